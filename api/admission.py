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
moment, not an identity. A request that comes when one is due may take it in someone else's
place; the window is the few milliseconds between the moment and the owner's request.

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
from contextlib import contextmanager

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
        self._turns: list[float] = []  # moments booked for refused clients, sorted
        self._last_turn = 0.0  # the exact moment of the last turn booked (before rounding)

    @property
    def active(self) -> int:
        return self._active

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def booked(self) -> int:
        return len(self._turns)

    def acquire(self) -> Slot:
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._active < self.limit:
                if self._turns and self._turns[0] <= now:
                    del self._turns[0]  # a due turn: most likely the client it was booked for
                    return self._admit(now)
                if self._active + self._turns_before(now) < self.limit:
                    return self._admit(now)
            elif self._turns and self._turns[0] <= now:
                # Its turn is due but the answers ahead took longer than measured: it comes
                # back in a second, and its turn moves to that moment. Left due, the slot that
                # frees meanwhile would go to whoever asks first: the client just answered.
                del self._turns[0]
                bisect.insort(self._turns, now + 1)
                raise Busy(retry_after=1)
            raise Busy(retry_after=self._book(now))

    def _admit(self, now: float) -> Slot:
        if self._active == 0:
            self._busy_mark = now
        self._active += 1
        return Slot(self, now)

    def _turns_before(self, now: float) -> int:
        """Booked turns due before an answer admitted now would be done."""
        horizon = now + (self._active + 1) * self._interval
        return bisect.bisect_right(self._turns, horizon)

    def _book(self, now: float) -> int:
        """The next turn at the end of the line; its whole seconds from now (Retry-After)."""
        # The first in line waits one answer; each next one, one more after the last turn.
        start = max(now, self._last_turn) if self._turns else now
        exact = start + self._interval
        wait = max(1, math.ceil(exact - now))
        if exact - now > self.max_wait:
            return wait  # too far ahead to hold a slot for: told the wait, no turn
        self._last_turn = exact
        # Due exactly when the client, told `wait`, is back. Rounding up to whole seconds can
        # put it before one booked earlier, hence sorted.
        bisect.insort(self._turns, now + wait)
        return wait

    def _expire(self, now: float) -> None:
        gone = bisect.bisect_left(self._turns, now - GRACE)
        del self._turns[:gone]

    def _release(self, now: float) -> None:
        with self._lock:
            self._active -= 1
            # Time between two answers done while busy: the model's time per answer, however
            # many wait. (Latency would count the queue too, and grows with the queue.)
            if self._busy_mark is not None:
                self._interval += ALPHA * ((now - self._busy_mark) - self._interval)
            self._busy_mark = now if self._active else None

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        held = self.acquire()
        try:
            yield held
        finally:
            held.release()


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
