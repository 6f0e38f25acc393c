"""Atomic instructions of a team spanning hosts: done once, in one order, on the main host's
memory, each a synchronisation point; batched when their result is ignored; a spinning
thread held at the main host rather than asking again and again. MainRegion and PartRegion
are wired together in one process (see team_harness.py)."""

from __future__ import annotations

import time

import pytest
from team_harness import Team, Worker, X

from faabric.messages.team import TeamOp
from faabric.threads.atomic_ops import DROPPED, read
from faabric.wasm.host import GuestFault

ADD32, ADD64, LOAD32, STORE32, CMPXCHG32 = 0x1E, 0x1F, 0x10, 0x17, 0x48
WAIT32, NOTIFY, FENCE = 0x01, 0x00, 0x03
WORD = 5 * 4096  # a word of a page that starts zero
FLAG = WORD + 64


def test_increments_from_both_hosts_all_count_and_each_old_value_is_seen_once(team: Team
                                                                             ) -> None:
    def part() -> list[int]:
        return [team.part.atomic(2, ADD32, WORD, 1, 0) for _ in range(150)]

    worker = Worker(part)
    mine = [team.main.atomic(0, ADD32, WORD, 1, 0) for _ in range(150)]
    theirs = worker.join()
    assert isinstance(theirs, list)
    assert sorted(mine + theirs) == list(range(300))
    assert read(team.main_memory.view, WORD, 4) == 300


def test_an_atomic_store_publishes_the_writes_before_it_and_a_load_brings_them_in(
        team: Team) -> None:
    team.part_memory.view[X] = 42  # a plain write, then a release store of the flag
    team.part.atomic(2, STORE32, FLAG, 1, 0)
    assert read(team.main_memory.view, FLAG, 4) == 1
    assert team.main.atomic(0, LOAD32, FLAG, 0, 0) == 1
    assert team.main_memory.view[X] == 42
    team.main_memory.view[X + 1] = 7
    team.main.atomic(0, ADD32, FLAG, 1, 0)
    assert team.part.atomic(2, LOAD32, FLAG, 0, 0) == 2  # and the main host's way back
    assert team.part_memory.view[X + 1] == 7
    assert read(team.part_memory.view, FLAG, 4) == 2  # the word itself, for plain reads


def test_an_atomic_sees_a_plain_write_published_before_it(team: Team) -> None:
    team.part_memory.view[WORD] = 10  # published by the barrier
    worker = Worker(lambda: team.part.barrier(2))
    team.main.barrier(0)
    worker.join()
    assert team.part.atomic(2, ADD32, WORD, 5, 0) == 10
    assert team.main.atomic(0, LOAD32, WORD, 0, 0) == 15


def test_ignored_results_are_batched_until_the_next_request(team: Team) -> None:
    for _ in range(100):
        assert team.part.atomic(2, ADD64 | DROPPED, WORD, 3, 0) == 0
    assert team.requests == []  # nothing sent yet
    assert read(team.main_memory.view, WORD, 8) == 0
    assert team.part.atomic(3, LOAD32, WORD, 0, 0) == 300
    assert len(team.requests) == 1 and team.requests[0].deferred == (
        (ADD64 | DROPPED, WORD, 300),)


def test_a_batch_left_at_the_end_of_a_part_reaches_the_main_host(team: Team) -> None:
    team.part.atomic(2, ADD32 | DROPPED, WORD, 2, 0)
    team.part.atomic(3, ADD32 | DROPPED, WORD, 2, 0)
    team.part.last_writes()
    assert [r.op for r in team.requests] == [TeamOp.APPLY]
    assert read(team.main_memory.view, WORD, 4) == 4


def test_compare_exchange_is_one_winner_across_hosts(team: Team) -> None:
    worker = Worker(lambda: team.part.atomic(2, CMPXCHG32, WORD, 0, 2))
    mine = team.main.atomic(0, CMPXCHG32, WORD, 0, 1)
    theirs = worker.join()
    assert sorted([mine, theirs]) == [0, 1] or sorted([mine, theirs]) == [0, 2]
    assert read(team.main_memory.view, WORD, 4) in (1, 2)


def test_a_spinning_load_waits_at_the_main_host_instead_of_asking_again(team: Team) -> None:
    def spin() -> int:
        while team.part.atomic(2, LOAD32, FLAG, 0, 0) == 0:
            pass
        return len(team.requests)

    worker = Worker(spin)
    time.sleep(0.3)
    team.main.atomic(0, STORE32, FLAG, 1, 0)
    asked = worker.join()
    assert isinstance(asked, int)
    assert asked < 40  # at most about one request per 20 ms held, not thousands


def test_a_spin_of_flushes_waits_for_something_to_be_published(team: Team) -> None:
    def spin() -> int:
        while team.part_memory.view[X] == 0:
            team.part.atomic(2, FENCE, 0, 0, 0)
        return len(team.requests)

    worker = Worker(spin)
    time.sleep(0.3)
    team.main_memory.view[X] = 1
    team.main.atomic(0, FENCE, 0, 0, 0)
    asked = worker.join()
    assert isinstance(asked, int) and asked < 40


def test_a_wait_returns_when_notified_when_the_word_differs_and_when_it_times_out(
        team: Team) -> None:
    assert team.part.atomic(2, WAIT32, WORD, 1, -1) == 1  # not equal
    started = time.monotonic()
    assert team.part.atomic(2, WAIT32, WORD, 0, 10_000_000) == 2  # 10 ms
    assert time.monotonic() - started < 1.0
    worker = Worker(lambda: team.part.atomic(2, WAIT32, WORD, 0, -1))
    time.sleep(0.005)
    woken = 0
    while worker.alive and woken == 0:
        woken = team.main.atomic(0, NOTIFY, WORD, 1, 0)
        time.sleep(0.001)
    assert worker.join() == 0


def test_an_unaligned_atomic_traps_the_thread(team: Team) -> None:
    with pytest.raises(GuestFault, match="unaligned"):
        team.part.atomic(2, ADD32, WORD + 2, 1, 0)
    with pytest.raises(GuestFault, match="unaligned"):
        team.main.atomic(0, ADD32, WORD + 2, 1, 0)


def test_a_stopped_region_fails_a_spinning_thread(team: Team) -> None:
    def spin() -> None:
        while True:  # parked at the main host between changes
            team.part.atomic(2, LOAD32, FLAG, 0, 0)

    worker = Worker(spin)
    time.sleep(0.1)
    team.main.stop("the app was stopped")
    with pytest.raises(GuestFault, match="stopped"):
        worker.join()
