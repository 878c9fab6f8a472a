"""Admission's turns, on a clock the test moves: pure logic, so a fake clock is fine here. The
same behaviour through real HTTP and the real model is `tests/reliability/test_fair_load.py`."""

from __future__ import annotations

import pytest

from api.admission import GRACE, Admission, Slot
from rag.errors import Busy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def refused(gate: Admission) -> int:
    with pytest.raises(Busy) as busy:
        gate.acquire()
    return int(busy.value.retry_after)


def busy_gate(limit: int, interval: float) -> tuple[Admission, Clock, list[Slot]]:
    """``limit`` answers in flight, the time per answer already measured as ``interval``."""
    clock = Clock()
    gate = Admission(limit, clock=clock, interval=interval)
    return gate, clock, [gate.acquire() for _ in range(limit)]


def test_retry_after_is_the_place_in_line_times_the_measured_time_per_answer() -> None:
    gate, clock, slots = busy_gate(limit=2, interval=1.0)
    # Answers finish every 2.5 s while busy: that, not the constant, is the time per answer.
    for _ in range(20):
        clock.now += 2.5
        slots.pop(0).release()
        slots.append(gate.acquire())
    assert gate.interval == pytest.approx(2.5, abs=0.05)
    waits = [refused(gate) for _ in range(4)]
    assert waits == [3, 5, 8, 10]  # ceil(2.5 k): the k-th in line waits k answers


def test_a_client_that_honours_retry_after_gets_in_before_one_that_was_just_answered() -> None:
    gate, clock, slots = busy_gate(limit=2, interval=1.0)
    wait = refused(gate)  # client A: told to come back in `wait` seconds
    clock.now += 0.5
    slots.pop(0).release()  # client B's answer is done; B asks again at once ...
    assert refused(gate) > wait  # ... and goes to the end of the line, behind A
    clock.now += wait - 0.5  # A comes back when told
    slots.append(gate.acquire())
    assert gate.active == 2


def test_a_turn_due_while_all_slots_are_busy_is_kept_for_its_client() -> None:
    """Answers took longer than measured: the client is back on time and all slots are still
    busy. It is told to come back in a second, and the slot that frees meanwhile waits for it
    rather than going to the client whose answer just finished."""
    gate, clock, slots = busy_gate(limit=2, interval=1.0)
    wait = refused(gate)
    clock.now += wait  # A back on time; nothing has finished yet
    assert refused(gate) == 1
    clock.now += 0.3
    slots.pop(0).release()  # B's answer is done; B asks again at once ...
    assert refused(gate) > 1  # ... and is behind A
    clock.now += 0.7  # A, back a second later
    slots.append(gate.acquire())
    assert gate.active == 2


def test_a_client_whose_turn_was_taken_keeps_its_place_when_it_sends_its_ticket_back() -> None:
    """Someone asks a moment before A, when A's turn is due, and takes it. A, back with the
    ticket its 429 carried (X-Turn), is still first in line: not sent behind those booked
    after it."""
    gate, clock, slots = busy_gate(limit=2, interval=1.0)
    with pytest.raises(Busy) as first:
        gate.acquire()
    ticket = first.value.ticket
    assert ticket is not None
    behind = [refused(gate) for _ in range(3)]  # three more in line after A
    clock.now += first.value.retry_after
    slots.pop(0).release()
    slots.append(gate.acquire())  # not A: someone without a ticket takes A's due turn
    with pytest.raises(Busy) as again:
        gate.acquire(ticket)  # A, on time; no slot is free
    assert (again.value.retry_after, again.value.ticket) == (1, ticket)
    clock.now += 1  # the next booked turn is due now too; A's, re-booked, comes first
    slots.pop(0).release()
    slots.append(gate.acquire(ticket))
    assert gate.active == 2 and gate.booked == len(behind)  # the next one's turn waits for it


def test_a_ticket_sent_early_gets_the_rest_of_its_wait_and_unknown_ones_count_for_nothing() -> None:
    gate, clock, _ = busy_gate(limit=1, interval=2.0)
    with pytest.raises(Busy) as first:
        gate.acquire()
    clock.now += 0.5
    with pytest.raises(Busy) as early:
        gate.acquire(first.value.ticket)
    assert (early.value.retry_after, early.value.ticket) == (2, first.value.ticket)
    assert gate.booked == 1  # still the one turn, not a second one
    for junk in ("999", "abc", ""):
        with pytest.raises(Busy) as newcomer:
            gate.acquire(junk)
        assert newcomer.value.ticket not in (junk, first.value.ticket)  # booked as anyone new


@pytest.mark.parametrize("service", [(0.6,), (0.3, 1.5, 0.6, 0.9)], ids=["steady", "uneven"])
def test_everyone_in_line_is_served_in_turn(service: tuple[float, ...]) -> None:
    """64 polite clients, 8 slots, the model answering one at a time in ``service`` seconds
    (in turn); an answered client asks again at once. Nobody gets a second answer before
    everyone has had a first."""
    limit, clients = 8, 64
    interval = sum(service) / len(service)
    clock = Clock()
    gate = Admission(limit, clock=clock, interval=interval)  # as measured by earlier answers
    running: list[tuple[Slot, int]] = []
    come_back: dict[int, float] = {}
    answered: list[int] = []
    for c in range(clients):
        try:
            running.append((gate.acquire(), c))
        except Busy as busy:
            come_back[c] = clock.now + busy.retry_after
    end = clock.now + clients * interval * 2 + 10
    answers = 0
    next_done = clock.now + service[0]
    while clock.now < end and len(set(answered)) < clients:
        clock.now = round(clock.now + 0.05, 2)
        if clock.now >= next_done and running:  # the model finishes the oldest answer
            answers += 1
            next_done += service[answers % len(service)]
            slot, c = running.pop(0)
            slot.release()
            answered.append(c)
            come_back[c] = clock.now  # asks again straight away
        for c, t in sorted(come_back.items(), key=lambda kv: kv[1]):
            if t <= clock.now:
                del come_back[c]
                try:
                    running.append((gate.acquire(), c))
                except Busy as busy:
                    come_back[c] = clock.now + busy.retry_after
    # Nobody gets a second answer before everyone has had a first.
    assert len(set(answered[:clients])) == clients, answered[:clients]


def test_turns_nobody_takes_expire_and_slots_go_to_whoever_asks() -> None:
    gate, clock, slots = busy_gate(limit=2, interval=1.0)
    waits = [refused(gate) for _ in range(3)]  # three clients told to come back; none will
    for s in slots:
        s.release()
    clock.now += max(waits) + GRACE + 0.1
    gate.acquire()
    assert gate.booked == 0 and gate.active == 1


def test_turns_do_not_idle_free_slots() -> None:
    """A turn booked far ahead does not keep a newcomer out of a slot that would be free long
    before it is due."""
    gate, _, slots = busy_gate(limit=4, interval=1.0)
    for _ in range(6):
        refused(gate)  # turns at 1 .. 6 s
    for s in slots:
        s.release()  # all four done at once
    gate.acquire()  # 0 active + turns due before it would be done (1 s): 1 < 4
    assert gate.active == 1


def test_turns_are_booked_only_up_to_max_wait() -> None:
    clock = Clock()
    gate = Admission(1, max_wait=5.0, clock=clock, interval=2.0)
    gate.acquire()
    waits = [refused(gate) for _ in range(4)]
    assert waits == [2, 4, 6, 6]  # the 3rd would be 6 s away: told so, no turn held for it
    assert gate.booked == 2
