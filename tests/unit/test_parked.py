"""Frozen ranks kept on a worker and rewritten for their thaw (worker/parked.py)."""

from __future__ import annotations

from faabric.granule.transfer import RankPackage, decode, encode
from faabric.messages.types import AppSpec, Batch
from faabric.mpi.moving import ArrivedRecord, PostedRecord, RankRecord
from faabric.worker.parked import ParkedRanks

RECORD = RankRecord(
    posted=(PostedRecord(1, 0, 3, 64, 8, 128, 5),),
    arrived=(ArrivedRecord(1, 0, 4, b"data", 7),),
    tokens=((4097, 256),), completions=12, next_token=3,
)


def _package(index: int) -> RankPackage:
    batch = Batch(9, AppSpec("ab" * 32, 2), (index,), ("old", "old"))
    return RankPackage(batch, index, 2, 1024, 2048, RECORD, b"out", b"err", b"o", 1.5, 30.0,
                       frozen=True)


def test_a_package_survives_the_wire_with_its_memory() -> None:
    memory = bytes(range(256)) * 16
    payload = bytearray(b"".join(bytes(part) for part in encode(_package(1), memory)))
    package, view = decode(payload)
    assert package == _package(1)
    assert bytes(view) == memory


def test_a_thaw_rewrites_placement_epoch_and_frozen() -> None:
    parked = ParkedRanks()
    for index in (0, 1):
        parked.park(_package(index), memoryview(b"m%d" % index))
    thawed, missing = parked.thaw(9, 5, ("x", "y"), (("x", "1:1"), ("y", "1:2")))
    assert missing == []
    assert [t.host for t in thawed] == ["x", "y"]
    for rank in thawed:
        assert rank.package.epoch == 5 and not rank.package.frozen
        assert rank.package.batch.placement == ("x", "y")
        assert rank.package.record == RECORD
    assert parked.count() == 0


def test_ranks_not_kept_are_reported_and_a_stop_drops_them() -> None:
    parked = ParkedRanks()
    parked.park(_package(1), memoryview(b""))
    _, missing = parked.thaw(9, 5, ("x", "y"), ())
    assert missing == [0]
    parked.park(_package(0), memoryview(b""))
    assert parked.drop(9) == 1 and parked.count() == 0


def test_a_worker_that_registers_again_drops_every_rank_it_kept() -> None:
    parked = ParkedRanks()
    for index in (0, 1):
        parked.park(_package(index), memoryview(b""))
    assert parked.drop_all() == 2
    assert parked.count() == 0 and parked.drop_all() == 0
