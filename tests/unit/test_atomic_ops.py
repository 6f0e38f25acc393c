"""The semantics of the program's atomic instructions as the main host does them, the batch
of ignored-result operations, and what counts as a spin."""

from __future__ import annotations

import numpy as np
import pytest

from faabric.snapshot import merge_diffs
from faabric.threads.atomic_ops import (
    DROPPED,
    SPIN_GAP,
    Atomic,
    Deferred,
    Kind,
    Spins,
    decode,
    perform,
    read,
    written,
)
from faabric.wasm.host import GuestFault

ADD32, ADD64, ADD8_32, SUB32, AND32, OR32, XOR32 = 0x1E, 0x1F, 0x20, 0x25, 0x2C, 0x33, 0x3A
XCHG16_32, CMPXCHG32, CMPXCHG64 = 0x44, 0x48, 0x49
LOAD32, LOAD8_64, STORE32, STORE32_64 = 0x10, 0x14, 0x17, 0x1D


@pytest.mark.parametrize(("code", "expected"), [
    (0x00, Atomic(Kind.NOTIFY, 4)),
    (0x01, Atomic(Kind.WAIT, 4)),
    (0x02, Atomic(Kind.WAIT, 8)),
    (0x03, Atomic(Kind.FENCE, 0)),
    (LOAD32, Atomic(Kind.LOAD, 4)),
    (LOAD8_64, Atomic(Kind.LOAD, 1)),
    (0x16, Atomic(Kind.LOAD, 4)),
    (STORE32, Atomic(Kind.STORE, 4)),
    (0x18, Atomic(Kind.STORE, 8)),
    (STORE32_64, Atomic(Kind.STORE, 4)),
    (ADD32, Atomic(Kind.ADD, 4)),
    (ADD64 | DROPPED, Atomic(Kind.ADD, 8, dropped=True)),
    (0x24, Atomic(Kind.ADD, 4)),
    (SUB32, Atomic(Kind.SUB, 4)),
    (0x32, Atomic(Kind.AND, 4)),
    (0x3B, Atomic(Kind.XOR, 8)),
    (XCHG16_32, Atomic(Kind.XCHG, 2)),
    (0x4E, Atomic(Kind.CMPXCHG, 4)),
])
def test_every_sub_opcode_decodes_to_its_operation_and_width(code: int, expected: Atomic
                                                            ) -> None:
    assert decode(code) == expected


@pytest.mark.parametrize("code", [0x04, 0x0F, 0x4F, 0x200, CMPXCHG32 | DROPPED,
                                  0x41 | DROPPED, LOAD32 | DROPPED])
def test_unknown_codes_and_droppable_codes_of_other_kinds_fault(code: int) -> None:
    with pytest.raises(GuestFault, match="unknown atomic operation"):
        decode(code)


def _memory() -> np.ndarray:
    return np.zeros(64, np.uint8)


def test_read_modify_writes_return_the_old_value_and_wrap_at_their_width() -> None:
    memory = _memory()
    assert perform(memory, decode(ADD32), 8, 0xFFFF_FFFF, 0) == (0, True)
    assert perform(memory, decode(ADD32), 8, 2, 0) == (0xFFFF_FFFF, True)
    assert read(memory, 8, 4) == 1
    assert perform(memory, decode(ADD8_32), 16, 0x1FF, 0) == (0, True)
    assert read(memory, 16, 4) == 0xFF  # only the low byte is added
    assert perform(memory, decode(SUB32), 20, 1, 0) == (0, True)
    assert read(memory, 20, 4) == 0xFFFF_FFFF
    perform(memory, decode(AND32), 20, 0xF0F0, 0)
    perform(memory, decode(OR32), 20, 0x1, 0)
    perform(memory, decode(XOR32), 20, 0x10, 0)
    assert read(memory, 20, 4) == 0xF0E1
    assert perform(memory, decode(ADD64), 24, 1 << 40, 0) == (0, True)
    assert read(memory, 24, 8) == 1 << 40


def test_exchange_compare_exchange_loads_and_stores() -> None:
    memory = _memory()
    assert perform(memory, decode(STORE32), 4, 7, 0) == (0, True)
    assert perform(memory, decode(STORE32), 4, 7, 0) == (0, False)  # the same value
    assert perform(memory, decode(LOAD32), 4, 0, 0) == (7, False)
    assert perform(memory, decode(CMPXCHG32), 4, 6, 9) == (7, False)  # fails
    assert perform(memory, decode(CMPXCHG32), 4, 7, 9) == (7, True)
    assert read(memory, 4, 4) == 9
    assert perform(memory, decode(CMPXCHG64), 32, 0, 1 << 63) == (0, True)
    assert perform(memory, decode(XCHG16_32), 40, 0x12345, 0) == (0, True)
    assert read(memory, 40, 4) == 0x2345
    assert perform(memory, decode(LOAD8_64), 40, 0, 0) == (0x45, False)


def test_unaligned_and_out_of_bounds_accesses_trap() -> None:
    memory = _memory()
    with pytest.raises(GuestFault, match="unaligned"):
        perform(memory, decode(ADD32), 2, 1, 0)
    with pytest.raises(GuestFault, match="out of bounds"):
        perform(memory, decode(ADD64), 64, 1, 0)


def test_written_builds_a_diff_that_puts_the_words_back() -> None:
    memory = _memory()
    perform(memory, decode(ADD32), 8, 5, 0)
    perform(memory, decode(ADD64), 16, 6, 0)
    diff = written(64, [(8, memory[8:12].tobytes()), (16, memory[16:24].tobytes())])
    elsewhere = _memory()
    elsewhere[0] = 1
    merge_diffs(elsewhere, [diff])
    assert read(elsewhere, 8, 4) == 5 and read(elsewhere, 16, 8) == 6 and elsewhere[0] == 1
    assert written(64, []).blocks == ()


def test_a_batch_combines_operations_on_one_word_and_keeps_first_seen_order() -> None:
    batch = Deferred()
    for _ in range(3):
        assert batch.add(ADD32 | DROPPED, 8, 0xFFFF_FFFF)  # -1 three times
    assert batch.add(OR32 | DROPPED, 16, 1)
    assert batch.add(OR32 | DROPPED, 16, 4)
    assert batch.add(XOR32 | DROPPED, 24, 3)
    assert batch.add(XOR32 | DROPPED, 24, 1)
    assert batch.take() == ((ADD32 | DROPPED, 8, 0xFFFF_FFFD), (OR32 | DROPPED, 16, 5),
                            (XOR32 | DROPPED, 24, 2))
    assert not batch


def test_a_batch_refuses_another_kind_on_a_pending_word_and_a_full_batch() -> None:
    batch = Deferred(limit=2)
    assert batch.add(ADD32 | DROPPED, 8, 1)
    assert not batch.add(SUB32 | DROPPED, 8, 1)  # send the batch first
    assert batch.add(ADD32 | DROPPED, 12, 1)
    assert not batch.add(ADD32 | DROPPED, 16, 1)
    assert batch.add(ADD32 | DROPPED, 12, 1)  # a pending word still combines


def test_a_combined_batch_does_what_the_operations_do_one_by_one() -> None:
    rng = np.random.default_rng(7)
    one_by_one, batched = _memory(), _memory()
    batch = Deferred()
    for _ in range(200):
        code = int(rng.choice([ADD32, SUB32])) | DROPPED
        address, value = int(rng.integers(0, 4)) * 4, int(rng.integers(0, 1 << 32))
        perform(one_by_one, decode(code), address, value, 0)
        if not batch.add(code, address, value):
            for c, a, v in batch.take():
                perform(batched, decode(c), a, v, 0)
            assert batch.add(code, address, value)
    for c, a, v in batch.take():
        perform(batched, decode(c), a, v, 0)
    assert (one_by_one == batched).all()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_spin_is_a_cycle_of_one_or_two_requests_repeated_with_the_same_answers() -> None:
    clock = Clock()
    spins = Spins(clock)
    assert spins.hint(1, LOAD32, 8, 0) is None
    spins.saw(1, LOAD32, 8, 0, 0)
    assert spins.hint(1, LOAD32, 8, 0) is None  # once is not a cycle yet
    spins.saw(1, LOAD32, 8, 0, 0)
    assert spins.hint(1, LOAD32, 8, 0) == 0
    assert spins.hint(2, LOAD32, 8, 0) is None  # per thread
    assert spins.hint(1, LOAD32, 12, 0) is None  # another word
    spins.saw(1, LOAD32, 8, 0, 5)  # the answer changed
    assert spins.hint(1, LOAD32, 8, 0) is None
    for _ in range(2):  # a flush then a load, twice
        spins.saw(3, 0x03, 0, 0, 1)
        spins.saw(3, LOAD32, 8, 0, 0)
    assert spins.hint(3, 0x03, 0, 0) == 1
    clock.now += 2 * SPIN_GAP  # the thread did something else meanwhile
    assert spins.hint(3, 0x03, 0, 0) is None
