"""The control-plane codec: every message and outcome round-trips, garbage is refused."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import msgpack
import pytest

from faabric.errors import BrokenError
from faabric.messages.codec import Codec
from faabric.messages.control import (
    CONTROL_CODEC,
    ControlMessage,
    Goodbye,
    KeepAlive,
    MigrationCancel,
    MigrationClaim,
    MigrationFreeze,
    MigrationOffer,
    MigrationPoints,
    MigrationStart,
    MigrationWithdrawn,
    OutputChunk,
    RankMoved,
    Refused,
    Register,
    Registered,
    Report,
    RunBatch,
    ScaleGranted,
    ScaleRefused,
    ScaleRelease,
    ScaleRequest,
    StopApp,
    TeamKeptLocal,
    TeamResized,
    ThawApp,
    WorkerCounters,
)
from faabric.messages.types import (
    AppInfo,
    AppSpec,
    AppState,
    Batch,
    Exited,
    Failed,
    GranuleResult,
    HostInfo,
    TimedOut,
    Trapped,
)

SPEC = AppSpec(
    module="ab" * 32,
    size=3,
    program="prog",
    args=("-x", "ü"),
    env=(("A", "1"), ("B", "")),
    input=b"\x00\xff\x80",
    timeout=1.5,
    memory_limit=1 << 20,
)
OUTCOMES = [
    Exited(0),
    Exited(-1),
    Exited(255),
    Trapped("unreachable"),
    TimedOut(2.0),
    Failed("worker w was lost"),
]


def _result(outcome: Any) -> GranuleResult:
    return GranuleResult(4, 2, "host-1", outcome, b"out\xff", b"", b"\x00" * 3, 1.25, 2.5)


MESSAGES = [
    Register("w1", 8, "0.1.0"),
    Registered("w1", 1.5),
    Refused("a worker named w1 is already registered"),
    KeepAlive(),
    WorkerCounters(1, 2, 3, 4, 5),
    RunBatch(Batch(4, SPEC, (0, 2))),
    RunBatch(Batch(5, AppSpec("cd" * 32, 1), ())),
    RunBatch(Batch(6, AppSpec("cd" * 32, 1, elastic=True), ())),
    StopApp(4),
    Goodbye("shutting down"),
    ScaleRequest(4, 17, 3),
    ScaleGranted(17, (("host-1", 2), ("host-2", 1))),
    ScaleRefused(18, "3 slots asked, 1 free", 1),
    ScaleRelease(4, 2),
    ScaleRequest(4, 18, 7, True, True),
    TeamResized(4, 0, 3),
    TeamKeptLocal(4, 1, 8, "2 hosts 1.50 s, 1 host 0.75 s ü"),
    MigrationPoints(4),
    MigrationOffer(4, 2),
    MigrationWithdrawn(4, 2),
    MigrationClaim(4, 2),
    MigrationStart(4, 2, ("host-1", "host-1"), (("host-1", "127.0.0.1:9"),)),
    MigrationCancel(4, 2, "the offer expired"),
    RankMoved(4, 1, 2, "host-1"),
    MigrationFreeze(4, 3, "host-2", (("host-2", "127.0.0.1:9"),)),
    ThawApp(4, 4, ("host-1", "host-2"), (("host-1", "127.0.0.1:8"),)),
    OutputChunk(4, 1, 2, 65536, b"\x00bytes\xff"),
    *(Report(_result(outcome)) for outcome in OUTCOMES),
]


def test_every_control_message_is_covered() -> None:
    assert {type(m) for m in MESSAGES} == set(typing.get_args(ControlMessage))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_control_message_round_trip(message: Any) -> None:
    decoded = CONTROL_CODEC.decode(CONTROL_CODEC.encode(message))
    assert decoded == message
    assert type(decoded) is type(message)


@pytest.mark.parametrize("outcome", OUTCOMES, ids=repr)
def test_outcome_round_trip(outcome: Any) -> None:
    decoded = CONTROL_CODEC.decode(CONTROL_CODEC.encode(outcome))
    assert decoded == outcome
    assert type(decoded) is type(outcome)


def test_field_types_are_restored() -> None:
    batch = CONTROL_CODEC.decode(CONTROL_CODEC.encode(RunBatch(Batch(4, SPEC, (0, 2))))).batch
    assert isinstance(batch.indices, tuple)
    assert isinstance(batch.spec.env, tuple) and isinstance(batch.spec.env[0], tuple)
    assert isinstance(batch.spec.input, bytes)
    # a float field sent as an int (e.g. by another encoder) comes back as a float
    spec = CONTROL_CODEC.decode(CONTROL_CODEC.encode(dataclasses.replace(SPEC, timeout=3)))
    assert spec.timeout == 3.0 and isinstance(spec.timeout, float)
    timed_out = CONTROL_CODEC.decode(CONTROL_CODEC.encode(TimedOut(7)))  # type: ignore[arg-type]
    assert isinstance(timed_out.seconds, float)


def test_nested_plain_values() -> None:
    value = ((1, (2.5, b"\x00")), "text", {"k": (b"v",)}, None, True, -(1 << 40))
    assert CONTROL_CODEC.decode(CONTROL_CODEC.encode(value)) == value
    assert CONTROL_CODEC.decode(CONTROL_CODEC.encode([1, [2]])) == (1, (2,))  # lists → tuples


def test_enums_travel_as_values() -> None:
    codec = Codec([AppInfo])
    info = AppInfo(1, "p", 2, AppState.RUNNING, ((0, "a"),), 1)
    decoded = codec.decode(codec.encode(info))
    assert decoded == info
    assert decoded.state is AppState.RUNNING


def test_unregistered_class_is_refused_on_encode() -> None:
    with pytest.raises(TypeError, match="HostInfo is not registered"):
        CONTROL_CODEC.encode(HostInfo("h", 1, 0))


def test_lookalike_class_is_refused_on_encode() -> None:
    @dataclasses.dataclass(frozen=True)
    class KeepAlive:  # same name as a registered class
        pass

    with pytest.raises(TypeError, match="not registered"):
        CONTROL_CODEC.encode(KeepAlive())


def test_unregistered_class_is_refused_on_decode() -> None:
    data = Codec([HostInfo]).encode(HostInfo("h", 1, 0))
    with pytest.raises(BrokenError, match="malformed"):
        CONTROL_CODEC.decode(data)


def test_register_rejects_non_dataclasses() -> None:
    with pytest.raises(TypeError):
        Codec([int])


def test_arbitrary_objects_are_refused() -> None:
    with pytest.raises(TypeError):
        CONTROL_CODEC.encode(object())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x92\x01",  # an array of 2 with one element
        b"\x01\x02",  # extra data
        msgpack.packb(msgpack.ExtType(7, b"x")),  # unknown extension type
        msgpack.packb(msgpack.ExtType(1, b"\xc1")),  # garbage inside the extension
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["Register", "w1"]))),  # too few fields
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["KeepAlive", 1]))),  # too many fields
        msgpack.packb(msgpack.ExtType(1, msgpack.packb([]))),  # no tag
        msgpack.packb(msgpack.ExtType(1, b"\xa1\xff")),  # invalid UTF-8 string
    ],
)
def test_garbage_is_broken(data: bytes) -> None:
    with pytest.raises(BrokenError):
        CONTROL_CODEC.decode(data)


@pytest.mark.parametrize("tag", ["Nope", "object", "__class__", "HostInfo"])
def test_unknown_tag_is_broken(tag: str) -> None:
    data = msgpack.packb(msgpack.ExtType(1, msgpack.packb([tag, 1, 2])))
    with pytest.raises(BrokenError):
        CONTROL_CODEC.decode(data)


def test_decode_accepts_memoryview() -> None:
    data = CONTROL_CODEC.encode(KeepAlive())
    assert CONTROL_CODEC.decode(memoryview(data)) == KeepAlive()
