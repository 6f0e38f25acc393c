"""Suspending an instance inside a host call and resuming it in another (asyncify)."""

from __future__ import annotations

from faabric.messages.types import Exited, Failed, Trapped
from faabric.toolchain.movable import MIGRATE_IMPORT, module_imports
from faabric.wasm import HostCall, HostFunction, Launcher, ModuleCache, RunSpec, WasmEngine
from faabric.wasm.suspend import Suspended, is_movable

SPEC = RunSpec(("suspend",))


def _migrate(answer: int) -> HostFunction:
    def impl(call: HostCall, epoch: int, area: int, size: int) -> int:
        if call.resuming():
            return answer
        assert epoch == 3
        call.suspend(area, size)
        return 0

    return HostFunction(*MIGRATE_IMPORT, ("i32", "i32", "i32"), ("i32",), impl)


def test_the_toolchain_makes_programs_that_import_the_migration_call_movable(
    guests: dict[str, bytes], modules: ModuleCache
) -> None:
    assert MIGRATE_IMPORT in module_imports(guests["suspend"])
    assert is_movable(modules.get(modules.add(guests["suspend"])).handle)
    assert not is_movable(modules.get(modules.add(guests["hello"])).handle)


def test_a_suspended_instance_resumes_where_it_stopped(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    module = modules.get(modules.add(guests["suspend"]))
    first = Launcher(engine, (_migrate(41),)).run(module, SPEC, None)
    assert isinstance(first.outcome, Suspended)
    assert first.outcome.area > 0 and first.outcome.stack_pointer > 0
    # A different launcher (as on another worker), from the suspended values alone.
    second = Launcher(engine, (_migrate(41),)).run(module, SPEC, None, resume=first.outcome)
    assert second.outcome == Exited(0)
    lines = [f"depth-{d} heap-ok {{}}" for d in range(1, 6)]
    values = [1 * 3 + 5]  # acc at each depth: acc*3 + depth on the way down
    for depth in (4, 3, 2, 1):
        values.append(values[-1] * 3 + depth)
    below = values[-1] + 41
    expected = ["before", "resumed with 41"]
    for depth in range(1, 6):
        expected.append(lines[depth - 1].format(below))
        below += depth
    expected.append(f"total {below} calls 6")
    assert (first.stdout + second.stdout).decode().splitlines() == expected


def test_a_resume_into_a_smaller_memory_limit_fails_cleanly(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    module = modules.get(modules.add(guests["suspend"]))
    first = Launcher(engine, (_migrate(1),)).run(module, SPEC, None)
    assert isinstance(first.outcome, Suspended)
    grown = Suspended(bytes(first.outcome.memory) + bytes(1 << 20), first.outcome.stack_pointer,
                      first.outcome.area)
    small = RunSpec(("suspend",), memory_limit=len(first.outcome.memory))
    second = Launcher(engine, (_migrate(1),)).run(module, small, None, resume=grown)
    assert isinstance(second.outcome, Failed)
    assert "cannot grow memory" in second.outcome.reason


def test_a_call_stack_too_deep_for_the_unwind_area_is_a_clear_trap(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    module = modules.get(modules.add(guests["suspend"]))
    result = Launcher(engine, (_migrate(1),)).run(module, RunSpec(("suspend", "tiny")), None)
    assert isinstance(result.outcome, Trapped)
    assert result.outcome.message.startswith(
        "the call stack at the migration point does not fit its 32 byte unwind area")
