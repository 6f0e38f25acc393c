"""The choice between spanning hosts and staying on one, from measured run times."""

from __future__ import annotations

from faabric.threads.span_choice import SPAN_RUNS, KeptLocal, SpanChoice, Way


def _spanned(choice: SpanChoice, *seconds: float) -> None:
    for s in seconds:
        assert choice.next_way() is Way.SPAN
        choice.ran_spanning(s)


def test_a_region_spans_twice_then_runs_once_on_one_host() -> None:
    choice = SpanChoice()
    _spanned(choice, 0.5, 0.2)
    assert SPAN_RUNS == 2
    assert choice.next_way() is Way.TRIAL


def test_a_faster_trial_keeps_the_region_on_one_host_for_good() -> None:
    choice = SpanChoice()
    _spanned(choice, 0.5, 0.2)
    verdict = choice.ran_trial(0.05)
    assert verdict == KeptLocal(0.2, 0.05)
    assert "200.0 ms" in verdict.describe() and "50.0 ms" in verdict.describe()
    assert [choice.next_way() for _ in range(3)] == [Way.LOCAL] * 3


def test_a_slower_trial_keeps_the_region_spanning() -> None:
    choice = SpanChoice()
    _spanned(choice, 0.5, 0.2)
    assert choice.ran_trial(0.3) is None
    assert [choice.next_way() for _ in range(3)] == [Way.SPAN] * 3


def test_the_first_spanning_run_shipping_the_whole_memory_is_not_held_against_it() -> None:
    choice = SpanChoice()
    _spanned(choice, 5.0, 0.2)
    assert choice.ran_trial(1.0) is None  # slower than the warm run, faster than the first


def test_a_trial_without_spanning_runs_or_a_second_trial_decides_nothing() -> None:
    assert SpanChoice().ran_trial(0.1) is None
    choice = SpanChoice()
    _spanned(choice, 0.5, 0.2)
    choice.ran_trial(0.3)
    assert choice.ran_trial(0.01) is None
    assert choice.next_way() is Way.SPAN
