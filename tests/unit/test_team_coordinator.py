"""Coordinator: the referee of a region spanning hosts, as a pure state machine.

Every diff here is a tiny real `Diff` (one changed byte of one page), so the tests can check
by identity which diffs each participant is handed, and in which order. Each hand-over is a
`Delivery` whose ticket counts that participant's hand-overs, from 0, in the order the
referee made them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

import numpy as np
import pytest

from faabric.snapshot import PAGE_SIZE, Diff, compute_diff
from faabric.threads.coordinator import Broken, Coordinator, Delivery, Granted, RegionBroken

MAIN, P1, P2 = "main", "p1", "p2"
STRANGER = "stranger"  # not a host of the region
KEY = 0x40


def make_diff(offset: int, value: int = 1) -> Diff:
    """A real diff of one page whose byte `offset` became `value`."""
    original = np.zeros(PAGE_SIZE, np.uint8)
    memory = original.copy()
    memory[offset] = value
    diff = compute_diff(memory, original, ((0, PAGE_SIZE),))
    assert diff.blocks, "the test diff must not be empty"
    return diff


@dataclass
class Answers:
    """Records answers (Granted or Broken) in the order they came."""

    got: list[Granted | Broken] = field(default_factory=list)

    def __call__(self, outcome: Granted | Broken) -> None:
        self.got.append(outcome)

    @property
    def answered(self) -> bool:
        return bool(self.got)

    def only(self) -> Granted | Broken:
        assert len(self.got) == 1, self.got
        return self.got[0]

    def delivered(self, value: int) -> Delivery:
        """The one answer's delivery, checking that it was granted with `value`."""
        outcome = self.only()
        assert isinstance(outcome, Granted), self.got
        assert outcome.value == value and outcome.delivery is not None, self.got
        return outcome.delivery


def same(found: tuple[Diff, ...], expected: tuple[Diff, ...]) -> bool:
    """The very diffs handed in, in this order (not merely equal ones)."""
    return len(found) == len(expected) and all(a is b for a, b in zip(found, expected,
                                                                       strict=True))


def is_delivery(found: Delivery | None, ticket: int, expected: tuple[Diff, ...]) -> bool:
    """`found` is the participant's `ticket`-th hand-over, of exactly the `expected` diffs."""
    return found is not None and found.ticket == ticket and same(found.diffs, expected)


def coordinator(*participants: str) -> Coordinator:
    return Coordinator(participants or (MAIN, P1, P2))


# -- locks ----------------------------------------------------------------------------------------


def test_lock_is_handed_over_in_fifo_order_with_the_releasers_diffs() -> None:
    c = coordinator()
    first, second, third, again = Answers(), Answers(), Answers(), Answers()
    d_main, d_p1, d_p2 = make_diff(1), make_diff(2), make_diff(3)

    c.acquire(MAIN, 0, KEY, first)
    assert first.only() == Granted(1, Delivery(0, ()))
    c.acquire(P1, 5, KEY, second)
    c.acquire(P2, 7, KEY, third)
    assert not second.answered and not third.answered

    c.release(MAIN, 0, KEY, d_main)
    assert is_delivery(second.delivered(1), 0, (d_main,))
    assert not third.answered  # FIFO: p2 came after p1

    c.release(P1, 5, KEY, d_p1)
    assert is_delivery(third.delivered(1), 0, (d_main, d_p1))  # log order

    c.acquire(MAIN, 0, KEY, again)
    assert not again.answered
    c.release(P2, 7, KEY, d_p2)
    # Never its own diff back, and what it saw at its first acquire is not repeated.
    assert is_delivery(again.delivered(1), 1, (d_p1, d_p2))


def test_two_threads_of_one_participant_queue_on_a_lock() -> None:
    c = coordinator()
    first, second = Answers(), Answers()
    c.acquire(P1, 1, KEY, first)
    c.acquire(P1, 2, KEY, second)  # another thread of the same host: not re-entrant
    assert first.only() == Granted(1, Delivery(0, ()))
    assert not second.answered
    with pytest.raises(RegionBroken):
        c.release(P1, 2, KEY, None)  # the waiting thread does not hold it
    c.release(P1, 1, KEY, make_diff(9))
    # Its own host's writes are not sent back; still, it is the host's next hand-over.
    assert second.only() == Granted(1, Delivery(1, ()))


def test_locks_with_different_keys_are_independent() -> None:
    c = coordinator()
    a, b = Answers(), Answers()
    c.acquire(MAIN, 0, 1, a)
    c.acquire(P1, 0, 2, b)
    assert a.only() == Granted(1, Delivery(0, ())) and b.only() == Granted(1, Delivery(0, ()))


def test_try_acquire() -> None:
    c = coordinator()
    d = make_diff(4)
    assert c.try_acquire(MAIN, 0, KEY) == Granted(1, Delivery(0, ()))
    assert c.try_acquire(P1, 0, KEY) == Granted(0)
    assert c.try_acquire(MAIN, 0, KEY) == Granted(0)  # not re-entrant either
    c.release(MAIN, 0, KEY, d)
    granted = c.try_acquire(P1, 0, KEY)  # its failed tries used no ticket
    assert granted.value == 1 and is_delivery(granted.delivery, 0, (d,))
    waiter = Answers()
    c.acquire(P2, 0, KEY, waiter)
    assert not waiter.answered
    c.release(P1, 0, KEY, None)
    assert is_delivery(waiter.delivered(1), 0, (d,))


@pytest.mark.parametrize(("holder", "releaser"), [
    (None, (MAIN, 0)),  # never acquired
    ((MAIN, 0), (MAIN, 1)),  # another thread of the holder's host
    ((MAIN, 0), (P1, 0)),  # the same thread number on another host
])
def test_releasing_a_lock_not_held_raises(holder: tuple[str, int] | None,
                                          releaser: tuple[str, int]) -> None:
    c = coordinator()
    if holder is not None:
        c.acquire(*holder, KEY, Answers())
    with pytest.raises(RegionBroken, match="does not hold it"):
        c.release(*releaser, KEY, make_diff(1))
    if holder is not None:  # the lock is still the holder's
        assert c.try_acquire(P2, 0, KEY) == Granted(0)


def test_a_refused_release_publishes_nothing() -> None:
    c = coordinator()
    with pytest.raises(RegionBroken):
        c.release(P1, 0, KEY, make_diff(1))
    assert c.catch_up(MAIN) == Delivery(0, ())


# -- barriers -------------------------------------------------------------------------------------


def test_barrier_answers_once_all_arrived_with_the_others_diffs_in_order() -> None:
    c = coordinator()
    answers = {p: Answers() for p in (P2, MAIN, P1)}
    diffs = {P2: make_diff(1), MAIN: None, P1: make_diff(2)}
    for who in (P2, MAIN):
        c.barrier(who, diffs[who], answers[who])
        assert not any(a.answered for a in answers.values())
    c.barrier(P1, diffs[P1], answers[P1])
    d_p2, d_p1 = diffs[P2], diffs[P1]
    assert d_p2 is not None and d_p1 is not None
    expected = {P2: (d_p1,), MAIN: (d_p2, d_p1), P1: (d_p2,)}
    for who, answer in answers.items():
        assert is_delivery(answer.delivered(0), 0, expected[who]), who


def test_barriers_can_follow_each_other() -> None:
    c = coordinator(MAIN, P1)
    first = make_diff(1)
    c.barrier(MAIN, first, Answers())
    c.barrier(P1, None, Answers())
    second = make_diff(2)
    main, p1 = Answers(), Answers()
    c.barrier(P1, second, p1)
    assert not p1.answered  # a new round: main has not arrived at this one
    c.barrier(MAIN, None, main)
    assert is_delivery(main.delivered(0), 1, (second,))  # not `first` (its own) again
    assert p1.only() == Granted(0, Delivery(1, ()))  # it got `first` at the previous barrier


def test_arriving_twice_at_one_barrier_raises() -> None:
    c = coordinator()
    c.barrier(P1, None, Answers())
    with pytest.raises(RegionBroken, match="twice"):
        c.barrier(P1, None, Answers())


def test_a_single_participant_passes_its_barrier_at_once() -> None:
    c = coordinator(MAIN)
    answer = Answers()
    c.barrier(MAIN, make_diff(1), answer)
    assert answer.only() == Granted(0, Delivery(0, ()))


# -- singles and ordered turns --------------------------------------------------------------------


@pytest.mark.parametrize(("calls", "expected"), [
    ([1, 1, 1], [1, 0, 0]),
    ([1, 2, 1, 2, 3], [1, 1, 0, 0, 1]),
    ([7, 0, 0, 7], [1, 1, 0, 0]),
])
def test_single_is_won_by_the_first_caller_of_each_seq(calls: list[int],
                                                       expected: list[int]) -> None:
    c = coordinator()
    assert [c.single(seq) for seq in calls] == expected


def test_ordered_wait_is_answered_at_once_when_it_is_the_turn() -> None:
    c = coordinator()
    d = make_diff(5)
    c.ordered_pass(P1, 3, 4, d)  # loop 3 moves to iteration 4
    now, other_loop = Answers(), Answers()
    c.ordered_wait(MAIN, 3, 4, now)
    assert is_delivery(now.delivered(0), 0, (d,))
    c.ordered_wait(MAIN, 9, 0, other_loop)  # a fresh loop starts at iteration 0
    assert other_loop.only() == Granted(0, Delivery(1, ()))


def test_ordered_wait_is_answered_by_the_matching_pass() -> None:
    c = coordinator()
    waits = {2: Answers(), 3: Answers()}
    c.ordered_wait(P1, 1, 2, waits[2])
    c.ordered_wait(P2, 1, 3, waits[3])
    d1, d2 = make_diff(1), make_diff(2)
    c.ordered_pass(MAIN, 1, 1, d1)
    c.ordered_pass(MAIN, 2, 2, make_diff(3))  # another loop's turn does not count
    assert not waits[2].answered and not waits[3].answered
    c.ordered_pass(MAIN, 1, 2, d2)
    got = waits[2].delivered(0)
    assert got.ticket == 0
    assert d1 in got.diffs and got.diffs[-1] is d2  # everything main published before, in order
    assert not waits[3].answered
    d3 = make_diff(4)
    c.ordered_pass(P1, 1, 3, d3)
    got = waits[3].delivered(0)
    assert got.ticket == 0 and got.diffs[-1] is d3
    assert got.diffs.index(d1) < got.diffs.index(d2) < got.diffs.index(d3)


# -- tickets --------------------------------------------------------------------------------------


def test_tickets_count_each_participants_hand_overs_whatever_the_operation() -> None:
    c = coordinator()
    tickets: dict[str, list[int]] = {MAIN: [], P1: [], P2: []}

    def note(who: str, delivery: Delivery | None) -> None:
        assert delivery is not None
        tickets[who].append(delivery.ticket)

    lock = Answers()
    c.acquire(MAIN, 0, KEY, lock)
    note(MAIN, lock.delivered(1))
    note(P1, c.try_acquire(P1, 0, KEY + 1).delivery)
    note(MAIN, c.catch_up(MAIN))
    turn = Answers()
    c.ordered_wait(P2, 0, 0, turn)
    note(P2, turn.delivered(0))
    arrivals = {p: Answers() for p in (MAIN, P1, P2)}
    for who, arrived in arrivals.items():
        c.barrier(who, make_diff(len(tickets[who]) + 1), arrived)
    for who, arrived in arrivals.items():
        note(who, arrived.delivered(0))
    note(P2, c.catch_up(P2))
    note(P1, c.catch_up(P1))
    queued = Answers()
    c.acquire(P1, 3, KEY, queued)  # main holds it: no hand-over yet
    assert not queued.answered
    c.release(MAIN, 0, KEY, None)
    note(P1, queued.delivered(1))

    assert tickets == {MAIN: [0, 1, 2], P1: [0, 1, 2, 3], P2: [0, 1, 2]}


def test_answers_without_a_hand_over_use_no_ticket() -> None:
    c = coordinator()
    c.acquire(MAIN, 0, KEY, Answers())  # main's ticket 0
    assert c.try_acquire(P1, 0, KEY) == Granted(0)  # refused: nothing to apply
    assert c.single(1) == 1 and c.single(1) == 0
    broken = Answers()
    c.acquire(P1, 1, KEY, broken)
    c.break_("stopped")
    assert broken.only() == Broken("stopped")

    fresh = coordinator()
    fresh.acquire(MAIN, 0, KEY, Answers())
    fresh.single(1)
    assert fresh.try_acquire(P1, 0, KEY) == Granted(0)
    assert fresh.catch_up(P1) == Delivery(0, ())  # p1's first hand-over is still ticket 0
    assert fresh.catch_up(MAIN) == Delivery(1, ())


def test_tickets_follow_the_order_the_referee_answered_in() -> None:
    """Two threads of one host wait on two locks; the one answered first gets the lower
    ticket, whatever order they queued in."""
    c = coordinator()
    c.acquire(P1, 0, 1, Answers())
    c.acquire(P2, 0, 2, Answers())
    early, late = Answers(), Answers()
    c.acquire(MAIN, 1, 1, late)  # queued first ...
    c.acquire(MAIN, 2, 2, early)
    d_p2, d_p1 = make_diff(1), make_diff(2)
    c.release(P2, 0, 2, d_p2)  # ... but answered second
    c.release(P1, 0, 1, d_p1)
    assert is_delivery(early.delivered(1), 0, (d_p2,))
    assert is_delivery(late.delivered(1), 1, (d_p1,))  # only what came after ticket 0


def test_tickets_of_participants_are_independent() -> None:
    c = coordinator(MAIN, P1)
    for expected in range(4):
        assert c.catch_up(MAIN) == Delivery(expected, ())
    assert c.catch_up(P1) == Delivery(0, ())
    assert c.catch_up(MAIN) == Delivery(4, ())


# -- who may take part ----------------------------------------------------------------------------


def test_a_non_participant_is_refused() -> None:
    c = coordinator()
    calls: list[Callable[[], object]] = [
        lambda: c.acquire(STRANGER, 0, KEY, Answers()),
        lambda: c.try_acquire(STRANGER, 0, KEY + 1),
        lambda: c.barrier(STRANGER, make_diff(1), Answers()),
        lambda: c.ordered_wait(STRANGER, 0, 0, Answers()),
        lambda: c.catch_up(STRANGER),
    ]
    for call in calls:
        with pytest.raises(RegionBroken, match="not a host of this region"):
            call()
    # A refused barrier arrival neither counts nor publishes.
    answers = {p: Answers() for p in (MAIN, P1)}
    for who, answer in answers.items():
        c.barrier(who, None, answer)
    assert not any(a.answered for a in answers.values())
    last = Answers()
    c.barrier(P2, None, last)
    assert last.only() == Granted(0, Delivery(0, ()))
    assert all(a.only() == Granted(0, Delivery(0, ())) for a in answers.values())


def test_a_refused_acquire_leaves_the_lock_free() -> None:
    c = coordinator()
    with pytest.raises(RegionBroken):
        c.acquire(STRANGER, 0, KEY, Answers())
    with pytest.raises(RegionBroken):
        c.try_acquire(STRANGER, 0, KEY + 1)
    assert c.try_acquire(MAIN, 0, KEY) == Granted(1, Delivery(0, ()))
    assert c.try_acquire(MAIN, 0, KEY + 1) == Granted(1, Delivery(1, ()))


def test_a_non_participant_queued_on_a_lock_harms_nobody() -> None:
    c = coordinator()
    c.acquire(MAIN, 0, KEY, Answers())
    with suppress(RegionBroken):  # refusing it at once would do
        c.acquire(STRANGER, 0, KEY, Answers())
    behind = Answers()
    c.acquire(P1, 0, KEY, behind)
    c.release(MAIN, 0, KEY, None)  # main's release is in order: it must not fail
    assert behind.only() == Granted(1, Delivery(0, ()))


def test_a_non_participant_waiting_for_an_ordered_turn_harms_nobody() -> None:
    c = coordinator()
    waiting = Answers()
    c.ordered_wait(P1, 0, 1, waiting)
    with suppress(RegionBroken):  # refusing it at once would do
        c.ordered_wait(STRANGER, 0, 1, Answers())
    c.ordered_pass(MAIN, 0, 1, None)  # main's pass is in order: it must not fail
    assert waiting.only() == Granted(0, Delivery(0, ()))


# -- breaking -------------------------------------------------------------------------------------


def test_break_answers_every_waiter_with_broken_and_fails_later_calls() -> None:
    c = coordinator()
    c.acquire(MAIN, 0, KEY, Answers())
    lock, barrier, ordered = Answers(), Answers(), Answers()
    c.acquire(P1, 0, KEY, lock)
    c.barrier(P2, make_diff(1), barrier)
    c.ordered_wait(P1, 0, 5, ordered)

    c.break_("part p1 trapped")
    for answer in (lock, barrier, ordered):
        assert answer.only() == Broken("part p1 trapped")
    assert c.broken == "part p1 trapped"

    calls: list[Callable[[], object]] = [
        lambda: c.acquire(P2, 0, 99, Answers()),
        lambda: c.try_acquire(P2, 0, 99),
        lambda: c.release(MAIN, 0, KEY, None),
        lambda: c.barrier(MAIN, None, Answers()),
        lambda: c.single(1),
        lambda: c.ordered_wait(MAIN, 0, 0, Answers()),
        lambda: c.ordered_pass(MAIN, 0, 1, None),
    ]
    for call in calls:
        with pytest.raises(RegionBroken, match="part p1 trapped"):
            call()

    c.break_("a second reason")  # the first reason stays; nobody is answered twice
    assert c.broken == "part p1 trapped"
    assert all(len(a.got) == 1 for a in (lock, barrier, ordered))


# -- the log --------------------------------------------------------------------------------------


def test_empty_diffs_are_not_logged() -> None:
    c = coordinator(MAIN, P1)
    c.publish(P1, Diff(PAGE_SIZE))
    c.publish(P1, None)
    assert c.catch_up(MAIN) == Delivery(0, ())


def test_catch_up_returns_each_diff_once() -> None:
    c = coordinator()
    d1, d2 = make_diff(1), make_diff(2)
    c.publish(P1, d1)
    c.publish(MAIN, make_diff(3))
    c.publish(P2, d2)
    assert is_delivery(c.catch_up(MAIN), 0, (d1, d2))
    assert c.catch_up(MAIN) == Delivery(1, ())


def test_trimming_keeps_what_a_slow_participant_has_not_seen() -> None:
    c = coordinator(MAIN, "fast", "slow")
    published: list[Diff] = []
    for round_ in range(6):  # main and fast pass a lock back and forth
        for who in (MAIN, "fast"):
            turn = Answers()
            c.acquire(who, 0, KEY, turn)
            assert turn.delivered(1).ticket == round_
            diff = make_diff(round_ * 2 + (who == MAIN), round_ + 1)
            published.append(diff)
            c.release(who, 0, KEY, diff)
    # Both of them are up to date now, but the slow one saw nothing yet: it gets it all.
    slow = Answers()
    c.acquire("slow", 0, KEY, slow)
    assert is_delivery(slow.delivered(1), 0, tuple(published))

    # Once everybody saw the log, only newer diffs are handed out.
    late = make_diff(100)
    c.release("slow", 0, KEY, late)
    granted = c.try_acquire("fast", 0, KEY)
    # fast saw main's last one when it acquired
    assert granted.value == 1 and is_delivery(granted.delivery, 6, (late,))
    assert is_delivery(c.catch_up(MAIN), 6, (published[-1], late))


def test_trimming_after_one_participant_syncs_keeps_the_others_entries() -> None:
    c = coordinator(MAIN, P1, P2)
    d_main, d_p1 = make_diff(1), make_diff(2)
    c.publish(MAIN, d_main)
    assert is_delivery(c.catch_up(P1), 0, (d_main,))
    c.publish(P1, d_p1)
    assert is_delivery(c.catch_up(MAIN), 0, (d_p1,))
    assert is_delivery(c.catch_up(P1), 1, ())
    assert is_delivery(c.catch_up(P2), 0, (d_main, d_p1))  # nothing dropped before p2 saw it
    assert c.catch_up(P2) == Delivery(1, ())
