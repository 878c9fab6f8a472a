"""Admission to the model: a bounded number of answers in flight, and turns for the rest.

At most ``limit`` answers are in flight (running or waiting for the model); beyond, a 429 at
once: waiting in an unbounded queue would turn a burst into minutes of latency and a pile of
threads. What a refused client is told, and what happens when it comes back, decides who gets
served. With a constant ``Retry-After`` shorter than the real wait, and the slot freed by an
answer taken at once by the client that just got it, 9 of 64 polite clients got any answer.

So a refusal books a **turn**: the moment, ``interval`` after the previous turn, when a slot
is expected to be free. ``interval`` is measured: the time between two answers finishing while
the model is busy (an EWMA), so the wait told is the measured queue wait, the client's place
in line times the measured time per answer. ``Retry-After`` is the whole seconds to its turn,
and the turn is set at exactly that moment, so a client that honours the header comes back
when its turn is due. While turns are booked, a request finds a slot only by taking a turn that
is due; anyone else (a new client, one that was just answered and asks again) is refused and
books the next turn at the end of the line. Nobody needs to send anything back: a turn is a
moment. A request that comes when one is due may take it in someone else's place (the window
is the few milliseconds between the moment and the owner's request), so each turn also has a
ticket, sent with the 429 as ``X-Turn``. A client that sends it back is known as the turn's
owner: if its turn was taken, it is first in line, not sent to the end of it. Without that, a
client whose turn was taken late in a busy spell was booked past the time it had (1 run in 4 of
`tests/reliability/test_fair_load.py` left a client unserved).

Bounds: turns are booked at most ``max_wait`` seconds ahead (further clients get the wait
without a turn), and a turn nobody takes expires ``GRACE`` seconds after it is due, so clients
that went away cannot hold slots for long. Turns are also not strict when they would only idle
the model: a request is admitted without a turn if the slots left cover every turn due before
it would be done.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from itertools import count

from rag.errors import Busy

GRACE = 3.0  # seconds a due turn waits for its client before it goes to anyone
ALPHA = 0.2  # weight of the newest measurement in the EWMA of the time per answer


class Admission:
    def __init__(
        self,
        limit: int,
        max_wait: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 1.0,
    ) -> None:
        self.limit = limit
        self.max_wait = max_wait
        self._clock = clock
        self._active = 0
        self._lock = threading.Lock()  # released from worker threads when streams end
        self._interval = interval  # measured seconds per answer; 1 s until the first one
        self._busy_mark: float | None = None  # last answer done, or when work began
        self._turns: list[tuple[float, int]] = []  # (moment, ticket) booked, sorted
        self._last_turn = 0.0  # the exact moment of the last turn booked (before rounding)
        self._taken: dict[int, float] = {}  # ticket -> moment, turns taken by someone else
        self._tickets = count(1)

    @property
    def active(self) -> int:
        return self._active

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def booked(self) -> int:
        return len(self._turns)

    def acquire(self, ticket: str | None = None) -> Slot:
        """A slot, or ``Busy`` with the wait and a ticket for the turn booked. ``ticket`` is
        one a 429 gave this client earlier, if it sends it back; any other value is ignored."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if ticket is not None and ticket.isdigit():
                number = int(ticket)
                place = next((i for i, (_, t) in enumerate(self._turns) if t == number), None)
                if place is not None or number in self._taken:  # a turn of its own
                    return self._own_turn(now, number, place)
            if self._active < self.limit:
                if self._turns and self._turns[0][0] <= now:
                    # A due turn: most likely the client it was booked for. If not, its owner,
                    # coming back with the ticket, is first in line (``_own_turn``).
                    _, someone = self._turns.pop(0)
                    self._taken[someone] = now
                    return self._admit(now)
                if self._active + self._turns_before(now) < self.limit:
                    return self._admit(now)
            elif self._turns and self._turns[0][0] <= now:
                # Its turn is due but the answers ahead took longer than measured: it comes
                # back in a second, and its turn moves to that moment. Left due, the slot that
                # frees meanwhile would go to whoever asks first: the client just answered.
                _, due = self._turns.pop(0)
                bisect.insort(self._turns, (now + 1, due))
                raise Busy(retry_after=1, ticket=str(due))
            wait, booked = self._book(now)
            raise Busy(retry_after=wait, ticket=booked)

    def _own_turn(self, now: float, ticket: int, place: int | None) -> Slot:
        """The owner of a turn is back; ``place`` is its turn's index in the line, or None if
        someone else took it. Early: told the rest of its wait. Due, or taken: a free slot is
        its; with none, it is back in a second, still first."""
        if place is not None and self._turns[place][0] > now:
            raise Busy(retry_after=math.ceil(self._turns[place][0] - now), ticket=str(ticket))
        if place is not None:
            del self._turns[place]
        self._taken.pop(ticket, None)
        if self._active < self.limit:
            return self._admit(now)
        bisect.insort(self._turns, (now + 1, ticket))
        raise Busy(retry_after=1, ticket=str(ticket))

    def _admit(self, now: float) -> Slot:
        if self._active == 0:
            self._busy_mark = now
        self._active += 1
        return Slot(self, now)

    def _turns_before(self, now: float) -> int:
        """Booked turns due before an answer admitted now would be done."""
        horizon = now + (self._active + 1) * self._interval
        return bisect.bisect_right(self._turns, (horizon, math.inf))

    def _book(self, now: float) -> tuple[int, str | None]:
        """The next turn at the end of the line: its whole seconds from now (Retry-After) and
        its ticket (none when it is too far ahead to hold a slot for)."""
        # The first in line waits one answer; each next one, one more after the last turn.
        start = max(now, self._last_turn) if self._turns else now
        exact = start + self._interval
        wait = max(1, math.ceil(exact - now))
        if exact - now > self.max_wait:
            return wait, None
        self._last_turn = exact
        # Due exactly when the client, told `wait`, is back. Rounding up to whole seconds can
        # put it before one booked earlier, hence sorted.
        ticket = next(self._tickets)
        bisect.insort(self._turns, (now + wait, ticket))
        return wait, str(ticket)

    def _expire(self, now: float) -> None:
        gone = bisect.bisect_left(self._turns, (now - GRACE, 0))
        del self._turns[:gone]
        for ticket, moment in list(self._taken.items()):
            if moment < now - GRACE:  # its owner did not come back for it
                del self._taken[ticket]

    def _release(self, now: float) -> None:
        with self._lock:
            self._active -= 1
            # Time between two answers done while busy: the model's time per answer, however
            # many wait. (Latency would count the queue too, and grows with the queue.)
            if self._busy_mark is not None:
                self._interval += ALPHA * ((now - self._busy_mark) - self._interval)
            self._busy_mark = now if self._active else None

    @contextmanager
    def slot(self, ticket: str | None = None) -> Iterator[Slot]:
        held = self.acquire(ticket)
        try:
            yield held
        finally:
            held.release()


class Entry:
    """Admission as one request sees it: with the ticket it sent back (``X-Turn``), if any."""

    def __init__(self, admission: Admission, ticket: str | None) -> None:
        self._admission = admission
        self._ticket = ticket

    def acquire(self) -> Slot:
        return self._admission.acquire(self._ticket)

    def slot(self) -> AbstractContextManager[Slot]:
        return self._admission.slot(self._ticket)


class Slot:
    """One admitted answer. ``release`` is idempotent: a stream may end by several paths."""

    def __init__(self, admission: Admission, started: float) -> None:
        self._admission = admission
        self.started = started
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._admission._release(self._admission._clock())
