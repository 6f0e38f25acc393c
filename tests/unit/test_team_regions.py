"""MainRegion and PartRegion wired together in one process (see team_harness.py): memory
travelling with synchronisation, locks, barriers, ordered turns, failures and stops."""

from __future__ import annotations

import time

import pytest
from team_harness import KEY, PART, REGION, TIMEOUT, Team, Worker, X, Y, make_team

from faabric.messages.team import TeamDone, TeamOp, TeamRefused, TeamReply, TeamRequest, TeamStop
from faabric.messages.types import Exited, Outcome, Trapped
from faabric.threads.coordinator import Broken, Granted
from faabric.threads.part_region import PartRegion
from faabric.wasm.host import GuestFault


def done(outcome: Outcome, diff_from: PartRegion | None = None, stdout: bytes = b"") -> TeamDone:
    diff = diff_from.last_writes() if diff_from is not None else None
    return TeamDone(REGION, PART, outcome, stdout, b"", diff)


# -- memory travels with the synchronisation ---------------------------------------------------


def test_a_part_thread_gets_a_lock_after_main_releases_it_and_sees_mains_writes(team: Team
                                                                                ) -> None:
    team.main.acquire(0, KEY)

    def part_thread() -> int:
        team.part.acquire(2, KEY)
        seen = int(team.part_memory.view[5000])
        team.part_memory.view[6000] = 99  # written while holding the lock
        team.part.release(2, KEY)
        return seen

    worker = Worker(part_thread)
    team.wait_served(1)  # the part's ACQUIRE is queued behind main
    assert worker.alive
    team.main_memory.view[5000] = 42
    team.main.release(0, KEY)
    assert worker.join() == 42

    team.main.acquire(1, KEY)  # after the part's release: its write comes in
    assert team.main_memory.view[6000] == 99
    team.main.release(1, KEY)
    [(host, reply)] = team.sent  # one reply: the part's acquire, its first delivery
    assert host == PART and isinstance(reply, TeamReply)
    assert (reply.request_id, reply.value, reply.ticket) == (1, 1, 0)
    assert len(reply.diffs) == 1  # main's write
    assert team.main_copy.entered == [0, 1] and team.part_copy.entered == [0]


def test_a_barrier_exchanges_writes_both_ways(team: Team) -> None:
    team.part_memory.view[7000] = 1
    worker = Worker(lambda: team.part.barrier(2))
    team.wait_served(1)
    assert worker.alive  # main has not arrived yet
    team.main_memory.view[7001] = 2
    team.main.barrier(0)
    worker.join()
    for memory in (team.main_memory, team.part_memory):
        assert list(memory.view[7000:7002]) == [1, 2]


def test_try_acquire_and_single_across_hosts(team: Team) -> None:
    assert team.part.try_acquire(3, KEY) == 1
    assert team.main.try_acquire(0, KEY) == 0
    team.part_memory.view[100] = 5
    team.part.release(3, KEY)
    assert team.main.try_acquire(0, KEY) == 1
    assert team.main_memory.view[100] == 5
    team.main.release(0, KEY)

    assert team.part.single(1) == 1
    assert team.main.single(1) == 0
    assert team.main.single(2) == 1
    assert team.part.single(2) == 0
    replies = [m for _, m in team.sent if isinstance(m, TeamReply)]
    # try_acquire won, single x2: only the won lock was a delivery.
    assert [r.ticket for r in replies] == [0, None, None]
    assert team.part_copy.entered == [0]


def test_ordered_turns_across_hosts(team: Team) -> None:
    def part_thread() -> None:
        team.part.ordered_wait(4, 1)
        team.part_memory.view[8000] = team.part_memory.view[8000] + 1
        team.part.ordered_pass(4, 2)

    worker = Worker(part_thread)
    team.wait_served(1)
    assert worker.alive  # iteration 1 waits for iteration 0
    team.main.ordered_wait(4, 0)  # main's turn at once
    team.main_memory.view[8000] = 10
    team.main.ordered_pass(4, 1)
    worker.join()
    team.main.ordered_wait(4, 2)
    assert team.main_memory.view[8000] == 11


def test_join_brings_in_the_parts_last_writes_and_output(team: Team) -> None:
    team.part_memory.view[9000] = 33
    result = done(Exited(0), team.part, b"hello from the part\n")
    team.main.part_done(result)
    assert team.main.join() == [result]
    assert team.main_memory.view[9000] == 33


def test_a_thread_sees_writes_another_thread_of_its_host_was_handed(team: Team) -> None:
    """Part: lock(B); x = 1; unlock(B); lock(A); unlock(A). Main thread 1 waits for A;
    main thread 2 takes B after the part's unlock(B), so it must see x = 1, even when it is
    answered while thread 1 has not applied the diffs it was handed yet."""
    lock_a, lock_b = KEY, KEY + 1
    team.main.acquire(0, lock_a)  # main's delivery 0
    handed: list[Granted | Broken] = []
    # Thread 1 queues for A exactly as MainRegion.acquire does, but will not wake up yet.
    team.main.coordinator.acquire(team.main.me, 1, lock_a, handed.append)
    team.part.acquire(2, lock_b)
    team.part_memory.view[X] = 1
    team.part.release(2, lock_b)
    team.main.release(0, lock_a)  # the lock goes to main thread 1 ...
    [granted] = handed
    assert isinstance(granted, Granted) and granted.value == 1
    delivery = granted.delivery  # ... with the part's write, as delivery 1
    assert delivery is not None and delivery.ticket == 1 and delivery.diffs

    def thread_2() -> int:
        team.main.acquire(2, lock_b)  # after the part's unlock(B): delivery 2
        return int(team.main_memory.view[X])

    worker = Worker(thread_2)
    team.main_copy.wait_entered(2)
    assert worker.alive  # delivery 2 waits for delivery 1 ...
    assert team.main_memory.view[X] == 0
    team.main_copy.apply(delivery, lambda: None)  # ... which thread 1 applies when it wakes
    assert worker.join() == 1
    team.main.release(2, lock_b)
    team.main.release(1, lock_a)


def test_a_part_applies_replies_in_ticket_order_whatever_order_they_come_in(team: Team
                                                                             ) -> None:
    """Main writes x, hands lock A to part thread 2, writes y, hands lock B to part thread
    3. The replies reach the part in reverse: thread 3 must still see x (and y)."""
    lock_a, lock_b = KEY, KEY + 1
    team.main.acquire(0, lock_a)
    team.main.acquire(1, lock_b)

    def part_thread(thread: int, key: int) -> tuple[int, int]:
        team.part.acquire(thread, key)
        seen = int(team.part_memory.view[X]), int(team.part_memory.view[Y])
        team.part.release(thread, key)
        return seen

    team.held = []
    first = Worker(lambda: part_thread(2, lock_a))
    team.wait_served(1)
    second = Worker(lambda: part_thread(3, lock_b))
    team.wait_served(2)
    team.main_memory.view[X] = 1
    team.main.release(0, lock_a)  # the part's delivery 0: x
    team.main_memory.view[Y] = 2
    team.main.release(1, lock_b)  # the part's delivery 1: y only (x went in delivery 0)
    held, team.held = team.held, None
    assert all(isinstance(r, TeamReply) for r in held)
    assert [(r.ticket, len(r.diffs)) for r in held if isinstance(r, TeamReply)] == [(0, 1),
                                                                                   (1, 1)]

    team.part.replied(held[1])
    team.part_copy.wait_entered(1)
    assert second.alive and first.alive  # thread 3 waits for delivery 0
    assert team.part_memory.view[Y] == 0
    team.part.replied(held[0])
    seen_first = first.join()  # thread 2 sees x (whether y is in yet is a race: not checked)
    assert isinstance(seen_first, tuple) and seen_first[0] == 1
    assert second.join() == (1, 2)
    team.main.acquire(0, lock_a)  # both part threads released: nothing is stuck
    team.main.acquire(1, lock_b)


def test_an_apply_waiting_for_a_lost_delivery_ends_by_the_deadline() -> None:
    team = make_team(deadline=0.3)
    try:
        lock_a, lock_b = KEY, KEY + 1
        team.main.acquire(0, lock_a)
        gave_up = Worker(lambda: team.main.acquire(1, lock_a))
        with pytest.raises(GuestFault, match="timed out"):
            gave_up.join()  # at the deadline; its request stays queued
        team.main.release(0, lock_a)  # thread 1's delivery 1: nobody will apply it
        stuck = Worker(lambda: team.main.acquire(2, lock_b))  # delivery 2
        team.main_copy.wait_entered(2)
        with pytest.raises(GuestFault, match="timed out"):
            stuck.join(0.5)
    finally:
        team.main.stop("test over")  # lets the waiting apply give up
        team.main.close()
        team.part.close()


def test_a_try_acquire_waiting_for_a_lost_delivery_ends_by_the_deadline() -> None:
    team = make_team(deadline=0.3)
    try:
        lock_a, lock_b = KEY, KEY + 1
        team.main.acquire(0, lock_a)
        gave_up = Worker(lambda: team.main.acquire(1, lock_a))
        with pytest.raises(GuestFault, match="timed out"):
            gave_up.join()
        team.main.release(0, lock_a)  # thread 1's delivery 1: nobody will apply it
        stuck = Worker(lambda: team.main.try_acquire(2, lock_b))  # delivery 2
        team.main_copy.wait_entered(2)
        with pytest.raises(GuestFault, match="timed out"):
            stuck.join(0.5)
    finally:
        team.main.stop("test over")
        team.main.close()
        team.part.close()


def test_a_request_before_the_memory_is_restored_faults(team: Team) -> None:
    team.part.copy = None
    with pytest.raises(GuestFault, match="not restored"):
        team.part.barrier(2)


# -- failures -------------------------------------------------------------------------------------


def test_a_failed_part_breaks_the_region_and_fails_waits_on_both_sides(team: Team) -> None:
    team.main.acquire(0, KEY)
    waiting_part = Worker(lambda: team.part.acquire(2, KEY))
    team.wait_served(1)
    team.main.part_done(done(Trapped("out of bounds memory access")))

    with pytest.raises(GuestFault) as caught:
        waiting_part.join()
    message = str(caught.value)
    assert "2, 3" in message and PART in message and "out of bounds" in message
    with pytest.raises(GuestFault, match="out of bounds"):
        team.main.barrier(0)
    with pytest.raises(GuestFault, match="out of bounds"):
        team.main.single(9)
    # The part's next request is answered with the failure too.
    with pytest.raises(GuestFault, match="out of bounds"):
        team.part.barrier(3)


def test_join_fails_naming_the_failed_part_while_another_still_runs() -> None:
    team = make_team(parts={"p1": (2, 3), "p2": (4,)})
    try:
        joining = Worker(team.main.join)
        time.sleep(0.05)
        assert joining.alive
        team.main.part_done(TeamDone(REGION, "p1", Trapped("unreachable"), b"", b""))
        with pytest.raises(GuestFault) as caught:
            joining.join()
        message = str(caught.value)
        assert "2, 3" in message and "p1" in message and "unreachable" in message
    finally:
        team.main.close()
        team.part.close()


def test_join_fails_when_the_only_part_failed(team: Team) -> None:
    team.main.part_done(done(Trapped("unreachable")))
    with pytest.raises(GuestFault, match="unreachable"):
        team.main.join()


def test_join_times_out_when_a_part_never_finishes() -> None:
    team = make_team(deadline=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(GuestFault, match="timed out"):
            team.main.join()
        assert time.monotonic() - started < TIMEOUT
    finally:
        team.main.close()
        team.part.close()


def test_a_wait_times_out_at_the_deadline() -> None:
    team = make_team(deadline=0.2)
    try:
        with pytest.raises(GuestFault, match="timed out waiting for a barrier"):
            team.main.barrier(0)  # the part never arrives
        team.main.acquire(0, KEY)
        with pytest.raises(GuestFault, match="timed out waiting for acquire"):
            team.part.acquire(2, KEY)
    finally:
        team.main.close()
        team.part.close()


def test_stop_fails_waits_on_both_sides(team: Team) -> None:
    stops: list[str] = []
    team.part.when_stopped(stops.append)
    team.main.acquire(0, KEY)
    part_waits = Worker(lambda: team.part.acquire(2, KEY))
    team.wait_served(1)
    main_waits = Worker(lambda: team.main.barrier(1))
    time.sleep(0.05)
    assert part_waits.alive and main_waits.alive

    team.main.stop("the app was stopped")
    for worker in (part_waits, main_waits):
        with pytest.raises(GuestFault, match="the app was stopped"):
            worker.join()
    assert (PART, TeamStop(REGION, "the app was stopped")) in team.sent
    assert stops == ["the app was stopped"]  # the part's threads were asked to stop
    # Later synchronisations fail at once, on both sides.
    with pytest.raises(GuestFault, match="the app was stopped"):
        team.part.barrier(3)
    with pytest.raises(GuestFault, match="the app was stopped"):
        team.main.acquire(1, KEY + 1)


def test_stop_does_not_tell_parts_that_already_finished(team: Team) -> None:
    team.main.part_done(done(Exited(0)))
    team.main.stop("late")
    assert not any(isinstance(m, TeamStop) for _, m in team.sent)


def test_a_part_stopped_on_its_own_side_fails_its_waits_and_calls_on_stop(team: Team
                                                                          ) -> None:
    stops: list[str] = []
    team.part.when_stopped(stops.append)
    team.main.acquire(0, KEY)
    waiting = Worker(lambda: team.part.acquire(2, KEY))
    team.wait_served(1)
    assert stops == []
    team.part.stop("worker shutting down")
    assert stops == ["worker shutting down"]
    with pytest.raises(GuestFault, match="worker shutting down"):
        waiting.join()
    with pytest.raises(GuestFault, match="worker shutting down"):
        team.part.single(1)
    with pytest.raises(GuestFault, match="worker shutting down"):
        team.part.release(2, KEY)


def test_a_part_without_on_stop_can_be_stopped(team: Team) -> None:
    team.part.stop("stopped early")
    with pytest.raises(GuestFault, match="stopped early"):
        team.part.barrier(2)


def test_the_part_knows_its_deadline() -> None:
    before = time.monotonic()
    team = make_team(deadline=5.0)
    try:
        assert before + 5.0 <= team.part.deadline <= time.monotonic() + 5.0
    finally:
        team.main.close()
        team.part.close()


def test_stop_tells_only_unfinished_parts_and_never_raises() -> None:
    team = make_team(parts={"p1": (2,), "p2": (3,), "p3": (4,)})
    try:
        team.main.part_done(TeamDone(REGION, "p1", Exited(0), b"", b""))
        team.unreachable = True  # every TeamStop is lost: stopping still goes on
        team.main.stop("the granule ended")
        assert sorted(host for host, _ in team.lost) == ["p2", "p3"]
        assert all(m == TeamStop(REGION, "the granule ended") for _, m in team.lost)
        assert team.main.coordinator.broken == "the granule ended"
        with pytest.raises(GuestFault, match="the granule ended"):
            team.main.join()
    finally:
        team.main.close()
        team.part.close()


# -- answers that cannot go, and refusals ---------------------------------------------------


def test_a_reply_that_cannot_be_posted_breaks_the_region(team: Team) -> None:
    team.unreachable = True
    asking = Worker(lambda: team.part.single(1))
    team.wait_served(1)
    [(host, lost)] = team.lost
    assert host == PART and isinstance(lost, TeamReply) and lost.value == 1
    reason = f"lost worker {PART}: {PART} is unreachable"
    assert team.main.coordinator.broken == reason
    with pytest.raises(GuestFault, match=reason):
        team.main.barrier(0)
    with pytest.raises(GuestFault, match=reason):
        team.main.join()
    assert asking.alive  # its answer was lost: only a stop (or its deadline) ends the wait
    team.unreachable = False
    team.main.stop("test over")  # the region is broken already; the part is told anyway
    with pytest.raises(GuestFault, match="test over"):
        asking.join()


def test_a_refusal_that_cannot_be_posted_is_dropped(team: Team) -> None:
    team.unreachable = True
    team.main.request(TeamRequest(REGION, "stranger", 1, TeamOp.ACQUIRE, 0, KEY, 0))
    [(host, lost)] = team.lost
    assert host == "stranger" and isinstance(lost, TeamRefused)
    assert team.main.coordinator.broken is None  # nobody of the region waits for it


@pytest.mark.parametrize("op", [TeamOp.BARRIER, TeamOp.ACQUIRE, TeamOp.TRY_ACQUIRE,
                                TeamOp.ORDERED_WAIT])
def test_a_refused_request_is_answered_with_team_refused(team: Team, op: TeamOp) -> None:
    team.main.request(TeamRequest(REGION, "stranger", 7, op, 0, KEY, 0))
    [(host, refused)] = team.sent
    assert host == "stranger" and isinstance(refused, TeamRefused)
    assert (refused.region, refused.request_id) == (REGION, 7)
    assert "not a host of this region" in refused.reason
    assert team.main.coordinator.broken is None  # the region goes on
    team.main.acquire(0, KEY)


def test_a_refused_release_from_a_part_breaks_the_region(team: Team) -> None:
    team.part.release(2, KEY)  # it never acquired KEY; nobody waits to hear of the refusal
    reason = team.main.coordinator.broken
    assert reason is not None and reason.startswith(f"on worker {PART}: ")
    assert "does not hold it" in reason
    assert team.sent == []  # no TeamRefused for a request nobody waits for
    with pytest.raises(GuestFault, match="does not hold it"):
        team.main.barrier(0)
    with pytest.raises(GuestFault, match="does not hold it"):
        team.part.barrier(2)  # refused: the part hears the reason with its next request


def test_a_refused_ordered_pass_breaks_the_region(team: Team) -> None:
    team.main.request(TeamRequest(REGION, "stranger", 1, TeamOp.ORDERED_PASS, 0, 4, 1))
    assert team.main.coordinator.broken == (
        "on worker stranger: stranger is not a host of this region")
    assert team.sent == []
    with pytest.raises(GuestFault, match="not a host of this region"):
        team.main.ordered_wait(4, 0)


def test_a_refusal_fails_the_parts_waiter_with_its_reason(team: Team) -> None:
    team.main.acquire(0, KEY)
    team.held = []
    waiting = Worker(lambda: team.part.acquire(2, KEY))
    team.wait_served(1)
    # A failed part breaks the region: the queued acquire is refused.
    team.main.part_done(TeamDone(REGION, PART, Trapped("unreachable"), b"", b""))
    [refusal] = team.held
    assert isinstance(refusal, TeamRefused) and refusal.request_id == 1
    assert "unreachable" in refusal.reason
    time.sleep(0.05)
    assert waiting.alive  # the part itself was not stopped: only the refusal ends the wait
    team.part.replied(refusal)
    with pytest.raises(GuestFault) as caught:
        waiting.join()
    assert str(caught.value) == refusal.reason
    team.part.replied(refusal)  # a second answer to a finished request is ignored
    team.part.replied(TeamReply(REGION, 99, 1))  # so is an answer to no request


def test_a_refused_single_of_a_part_faults_with_the_reason(team: Team) -> None:
    team.main.part_done(TeamDone(REGION, PART, Trapped("out of fuel"), b"", b""))
    with pytest.raises(GuestFault, match="out of fuel"):
        team.part.single(3)
    assert isinstance(team.sent[-1][1], TeamRefused)
