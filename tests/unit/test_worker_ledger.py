"""The worker's ledger of granules held: what a registration lists, and results kept while
the planner is away and sent once the worker has registered again."""

from __future__ import annotations

from faabric.messages.control import Report
from faabric.messages.types import Exited, GranuleResult
from faabric.worker.ledger import GranuleLedger


def result(app_id: int, index: int) -> GranuleResult:
    return GranuleResult(app_id, index, "w", Exited(0))


def test_a_delivered_result_frees_its_granule() -> None:
    ledger = GranuleLedger()
    ledger.connected()
    ledger.taken(1, 0)
    ledger.taken(1, 1)
    sent: list[Report] = []
    ledger.report(result(1, 0), lambda report: sent.append(report) is None)
    assert sent == [Report(result(1, 0))]
    assert ledger.running() == ((1, 1),)


def test_results_wait_for_the_next_registration_and_stay_listed_until_sent() -> None:
    ledger = GranuleLedger()
    ledger.connected()
    ledger.taken(2, 0)
    ledger.taken(3, 0)
    ledger.report(result(2, 0), lambda report: False)  # the connection broke under it
    ledger.disconnected()
    ledger.report(result(3, 0), lambda report: True)  # no planner: kept, not sent
    assert ledger.running() == ((2, 0), (3, 0))  # the registration lists both
    assert ledger.connected() == [result(2, 0), result(3, 0)]
    for kept in (result(2, 0), result(3, 0)):
        ledger.report(kept, lambda report: True)
    assert ledger.running() == ()


def test_a_rank_moved_away_is_not_listed() -> None:
    ledger = GranuleLedger()
    ledger.taken(4, 2)
    ledger.moved(4, 2)
    assert ledger.running() == ()
