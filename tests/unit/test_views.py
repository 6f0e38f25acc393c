"""Request validation and response documents of the planner's HTTP API (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from faabric.messages.types import (
    AppInfo,
    AppSpec,
    AppState,
    Exited,
    Failed,
    GranuleResult,
    HostInfo,
    Outcome,
    TimedOut,
    Trapped,
)
from faabric.planner.core import AppView
from faabric.planner.views import (
    MAX_APP_SIZE,
    MAX_BATCH,
    app_document,
    app_info_document,
    host_document,
    outcome_document,
    parse_app_spec,
    parse_batch,
    parse_ids,
    result_document,
)

DIGEST = "ab" * 32


def test_minimal_spec_gets_the_defaults() -> None:
    assert parse_app_spec({"module": DIGEST}) == AppSpec(module=DIGEST, size=1)
    spec = parse_app_spec({"module": DIGEST})
    assert (spec.program, spec.args, spec.env, spec.input) == ("main", (), (), b"")
    assert spec.timeout == 300.0
    assert spec.memory_limit == 1 << 30


def test_full_spec() -> None:
    spec = parse_app_spec(
        {
            "module": DIGEST,
            "size": 4,
            "program": "mpi_hello",
            "args": ["-n", "3"],
            "env": {"B": "2", "A": "1"},
            "input": "AAH/",
            "timeout": 2,
            "memory_limit": 1 << 16,
        }
    )
    assert spec == AppSpec(
        module=DIGEST,
        size=4,
        program="mpi_hello",
        args=("-n", "3"),
        env=(("A", "1"), ("B", "2")),
        input=b"\x00\x01\xff",
        timeout=2.0,
        memory_limit=1 << 16,
    )
    assert isinstance(spec.timeout, float)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("size", MAX_APP_SIZE, MAX_APP_SIZE),
        ("args", ("a",), ("a",)),  # msgpack arrays may decode as tuples
        ("input", b"\xff\x00", b"\xff\x00"),  # msgpack binary stays bytes
        ("input", "", b""),
        ("timeout", 0.5, 0.5),
        ("memory_limit", 1 << 32, 1 << 32),
        ("migrate_every", 0, 0),  # never moved
        ("migrate_every", 7, 7),
    ],
)
def test_valid_field(field: str, value: Any, expected: Any) -> None:
    assert getattr(parse_app_spec({"module": DIGEST, field: value}), field) == expected


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (None, "must be a JSON object"),
        ([DIGEST], "must be a JSON object"),
        ("x", "must be a JSON object"),
        ({}, "'module'"),
        ({"module": DIGEST.upper()}, "'module'"),
        ({"module": DIGEST[:-1]}, "'module'"),
        ({"module": None}, "'module'"),
        ({"module": DIGEST, "extra": 1, "another": 2}, "unknown field(s): another, extra"),
        ({"module": DIGEST, "size": 0}, "'size' must be an integer from 1 to 100000"),
        ({"module": DIGEST, "size": -1}, "'size'"),
        ({"module": DIGEST, "size": MAX_APP_SIZE + 1}, "'size'"),
        ({"module": DIGEST, "size": 1.0}, "'size'"),
        ({"module": DIGEST, "size": "1"}, "'size'"),
        ({"module": DIGEST, "size": True}, "'size'"),
        ({"module": DIGEST, "size": None}, "'size'"),
        ({"module": DIGEST, "program": ""}, "'program'"),
        ({"module": DIGEST, "program": None}, "'program'"),
        ({"module": DIGEST, "program": ["a"]}, "'program'"),
        ({"module": DIGEST, "args": "abc"}, "'args'"),
        ({"module": DIGEST, "args": ["a", 1]}, "'args'"),
        ({"module": DIGEST, "args": {"a": "b"}}, "'args'"),
        ({"module": DIGEST, "env": [["A", "1"]]}, "'env'"),
        ({"module": DIGEST, "env": {"A": 1}}, "'env'"),
        ({"module": DIGEST, "env": {"A": None}}, "'env'"),
        ({"module": DIGEST, "input": 1}, "'input' must be base64 text"),
        ({"module": DIGEST, "input": ["AA=="]}, "'input'"),
        ({"module": DIGEST, "input": "AAA"}, "'input' is not valid base64"),
        ({"module": DIGEST, "input": "A A="}, "'input' is not valid base64"),
        ({"module": DIGEST, "timeout": 0}, "'timeout' must be a positive number"),
        ({"module": DIGEST, "timeout": -1.5}, "'timeout'"),
        ({"module": DIGEST, "timeout": float("nan")}, "'timeout'"),
        ({"module": DIGEST, "timeout": "10"}, "'timeout'"),
        ({"module": DIGEST, "timeout": True}, "'timeout'"),
        ({"module": DIGEST, "memory_limit": (1 << 16) - 1}, "'memory_limit'"),
        ({"module": DIGEST, "memory_limit": (1 << 32) + 1}, "'memory_limit'"),
        ({"module": DIGEST, "memory_limit": 65536.0}, "'memory_limit'"),
        ({"module": DIGEST, "migrate_every": -1}, "'migrate_every' must be an integer from 0"),
        ({"module": DIGEST, "migrate_every": 1 << 31}, "'migrate_every'"),
        ({"module": DIGEST, "migrate_every": 1.0}, "'migrate_every'"),
        ({"module": DIGEST, "migrate_every": True}, "'migrate_every'"),
    ],
)
def test_invalid_spec(doc: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_app_spec(doc)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Exited(0), {"kind": "exited", "code": 0, "message": "exited with 0"}),
        (Exited(3), {"kind": "exited", "code": 3, "message": "exited with 3"}),
        (Trapped("unreachable"), {"kind": "trapped", "message": "trapped: unreachable"}),
        (TimedOut(2.5), {"kind": "timed_out", "seconds": 2.5, "message": "timed out after 2.5 s"}),
        (Failed("worker w was lost"), {"kind": "failed", "message": "failed: worker w was lost"}),
    ],
)
def test_outcome_document(outcome: Outcome, expected: dict[str, Any]) -> None:
    assert outcome_document(outcome) == expected


def _result(index: int, outcome: Outcome, **kw: Any) -> GranuleResult:
    return GranuleResult(7, index, "h", outcome, **kw)


def test_result_document_json_and_binary() -> None:
    result = _result(
        1, Exited(0), stdout=b"a\xffb", stderr=b"e", output=b"\x00\xff", started=1.0, finished=2.5
    )
    assert result_document(result, binary=False) == {
        "index": 1,
        "host": "h",
        "status": 0,
        "outcome": {"kind": "exited", "code": 0, "message": "exited with 0"},
        "stdout": "a\ufffdb",
        "stderr": "e",
        "output": "AP8=",
        "started": 1.0,
        "finished": 2.5,
        "truncated": False,
    }
    binary = result_document(result, binary=True)
    assert (binary["stdout"], binary["stderr"], binary["output"]) == (b"a\xffb", b"e", b"\x00\xff")


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([Exited(0), Exited(0)], 0),
        ([Exited(0), Exited(5)], 5),
        ([Exited(2), Exited(5)], 2),  # the first non-zero status by index
        ([Exited(0), Trapped("oob")], 134),
        ([TimedOut(1.0), Exited(0)], 124),
        ([Exited(0), Failed("lost")], 1),
    ],
)
def test_finished_app_document(outcomes: list[Outcome], status: int) -> None:
    spec = AppSpec(module=DIGEST, size=len(outcomes), program="p")
    view = AppView(
        app_id=7,
        spec=spec,
        state=AppState.FINISHED,
        placement=tuple((i, "h") for i in range(len(outcomes))),
        results=tuple(_result(i, o) for i, o in enumerate(outcomes)),
        submitted=1.0,
        started=2.0,
        finished=3.0,
    )
    doc = app_document(view, binary=False)
    assert doc["status"] == status
    assert doc["state"] == "finished"
    assert (doc["app_id"], doc["program"], doc["size"]) == (7, "p", len(outcomes))
    assert (doc["submitted"], doc["started"], doc["finished"]) == (1.0, 2.0, 3.0)
    assert doc["placement"] == [{"index": i, "host": "h"} for i in range(len(outcomes))]
    assert [r["outcome"]["kind"] for r in doc["results"]] == [
        outcome_document(o)["kind"] for o in outcomes
    ]
    assert doc["truncated"] is False


def test_an_app_is_truncated_if_any_granule_was() -> None:
    results = (_result(0, Exited(0)), _result(1, Exited(0), stdout=b"cut", truncated=True))
    view = AppView(7, AppSpec(DIGEST, 2), AppState.FINISHED, ((0, "h"), (1, "h")), results,
                   1.0, 2.0, 3.0)
    doc = app_document(view, binary=False)
    assert doc["truncated"] is True
    assert [(r["stdout"], r["truncated"]) for r in doc["results"]] == [("", False),
                                                                        ("cut", True)]


def test_in_flight_app_document_has_no_status() -> None:
    view = AppView(7, AppSpec(DIGEST, 2), AppState.QUEUED, (), (), 1.0, None, None)
    doc = app_document(view, binary=True)
    assert doc["status"] is None
    assert doc["state"] == "queued"
    assert (doc["started"], doc["finished"], doc["placement"], doc["results"]) == (
        None,
        None,
        [],
        [],
    )
    running = AppView(
        7,
        AppSpec(DIGEST, 2),
        AppState.RUNNING,
        ((0, "a"), (1, "b")),
        (_result(0, Exited(1)),),
        1.0,
        2.0,
        None,
    )
    doc = app_document(running, binary=False)
    assert doc["status"] is None  # even with a non-zero result so far
    assert len(doc["results"]) == 1


def test_host_and_app_info_documents() -> None:
    assert host_document(HostInfo("h", 4, 1)) == {
        "name": "h", "slots": 4, "used": 1, "evicting": False}
    assert host_document(HostInfo("h", 4, 1, evicting=True))["evicting"] is True
    info = AppInfo(3, "p", 2, AppState.RUNNING, ((0, "a"), (1, "b")), done=1, scaled=(("b", 2),))
    assert app_info_document(info) == {
        "app_id": 3,
        "program": "p",
        "size": 2,
        "state": "running",
        "done": 1,
        "placement": [{"index": 0, "host": "a"}, {"index": 1, "host": "b"}],
        "scaled": [{"host": "b", "slots": 2}],
        "migrations": 0,
    }


def test_bytes_key_is_refused() -> None:
    with pytest.raises(ValueError, match="field name must be a string"):
        parse_app_spec({"module": DIGEST, b"size": 2})


# -- batches, id lists and scale changes -------------------------------------------------------


def test_batch_of_specs() -> None:
    specs = parse_batch({"apps": [{"module": DIGEST}, {"module": DIGEST, "size": 3}]})
    assert specs == [AppSpec(module=DIGEST, size=1), AppSpec(module=DIGEST, size=3)]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([{"module": DIGEST}], "one field, 'apps'"),
        ({"apps": [{"module": DIGEST}], "wait": 1}, "one field, 'apps'"),
        ({"apps": []}, f"1 to {MAX_BATCH} apps"),
        ({"apps": {"module": DIGEST}}, "must be a list"),
        ({"apps": [{"module": DIGEST}] * (MAX_BATCH + 1)}, f"1 to {MAX_BATCH} apps"),
        ({"apps": [{"module": DIGEST}, {"module": DIGEST, "size": 0}]}, r"apps\[1\]: 'size'"),
        ({"apps": [{"module": DIGEST}, 7]}, r"apps\[1\]: the body must be a JSON object"),
    ],
)
def test_bad_batch(doc: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_batch(doc)


@pytest.mark.parametrize(
    ("text", "ids"),
    [("7", [7]), ("4,7-9", [4, 7, 8, 9]), ("3-3,1", [3, 1]), (f"1-{MAX_BATCH}", None)],
)
def test_id_lists(text: str, ids: list[int] | None) -> None:
    assert parse_ids(text) == (ids if ids is not None else list(range(1, MAX_BATCH + 1)))


@pytest.mark.parametrize(
    "text", ["", "a", "1,", "-3", "1-", "5-4", "1--2", " 1", f"1-{MAX_BATCH + 1}", "1" * 19]
)
def test_bad_id_lists(text: str) -> None:
    with pytest.raises(ValueError, match="'ids'"):
        parse_ids(text)


def test_app_document_shows_granted_slots() -> None:
    view = AppView(
        7, AppSpec(DIGEST, 1), AppState.RUNNING, ((0, "a"),), (), 1.0, 2.0, None, (("a", 3),)
    )
    assert app_document(view, binary=True)["scaled"] == [{"host": "a", "slots": 3}]

