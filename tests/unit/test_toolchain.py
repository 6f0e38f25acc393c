"""The compiler driver and the cached build."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from faabric.errors import ToolchainError
from faabric.toolchain import build, cc_main, default_flags_for
from faabric.toolchain import builder as build_module
from faabric.wasm import ModuleCache, WasmEngine

GUESTS = Path(__file__).resolve().parent.parent / "guests"


def _no_compiler(*args: object, **kwargs: object) -> None:
    raise AssertionError("the compiler ran")


def test_build_is_cached_and_second_build_runs_no_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(GUESTS / "noop.c", cache_dir=tmp_path)
    assert first.read_bytes().startswith(b"\0asm")
    monkeypatch.setattr(build_module.subprocess, "run", _no_compiler)
    assert build(GUESTS / "noop.c", cache_dir=tmp_path) == first


def test_different_flags_give_a_different_build(tmp_path: Path) -> None:
    plain = build(GUESTS / "noop.c", cache_dir=tmp_path)
    small = build(GUESTS / "noop.c", flags=("-Os",), cache_dir=tmp_path)
    assert plain != small


def test_compile_error_carries_the_diagnostics(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError) as caught:
        build(GUESTS / "broken.c", cache_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith("compiling broken.c failed:")
    assert "undeclared_variable" in message
    # nothing half-written left behind (the library archives in libs/ are complete, and
    # tools/ holds the stand-in for clang's own wasm-opt run)
    assert [path.name for path in tmp_path.iterdir() if path.name not in ("libs", "tools")] == []


def test_missing_compiler_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"clang-16 not found; install .*apt-get install"):
        build(GUESTS / "noop.c", cache_dir=tmp_path)
    assert cc_main(["app.c"], cxx=False) == 127
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("faabric cc: clang-16 not found")


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="cannot read"):
        build(tmp_path / "nope.c", cache_dir=tmp_path)


def test_cc_builds_a_runnable_module(tmp_path: Path, engine: WasmEngine) -> None:
    out = tmp_path / "hello.wasm"
    assert cc_main([str(GUESTS / "hello.c"), "-o", str(out)], cxx=False) == 0
    cache = ModuleCache(engine, tmp_path, lambda digest: b"")
    cache.get(cache.add(out.read_bytes()))


def test_cc_reports_compile_errors_with_nonzero_status(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    status = cc_main([str(GUESTS / "broken.c"), "-o", str(tmp_path / "b.wasm")], cxx=False)
    assert status != 0
    assert "undeclared_variable" in capfd.readouterr().err


def test_cxx_builds_with_libcxx(tmp_path: Path) -> None:
    wasm = build(GUESTS / "hello.cpp", cache_dir=tmp_path)
    assert wasm.read_bytes().startswith(b"\0asm")


def test_thread_capable_build_imports_shared_memory(guests: dict[str, bytes]) -> None:
    # The limits byte 0x03 marks a shared memory with a maximum in the import section.
    assert b"\x03env\x06memory\x02\x03" in guests["threads"]


def test_default_flags_for(tmp_path: Path) -> None:
    omp = tmp_path / "omp.c"
    omp.write_text("int main(void) {\n  #pragma omp parallel\n  {}\n  return 0;\n}\n")
    pth = tmp_path / "pth.c"
    pth.write_text("#include <pthread.h>\nint main(void) { return 0; }\n")
    assert default_flags_for(omp) == ("-fopenmp",)
    assert default_flags_for(pth) == ("-pthread",)
    assert default_flags_for(GUESTS / "hello.c") == ()


def test_driver_does_not_link_with_dash_c(tmp_path: Path) -> None:
    obj = tmp_path / "noop.o"
    assert cc_main(["-c", str(GUESTS / "noop.c"), "-o", str(obj)], cxx=False) == 0
    assert obj.is_file()


def test_subprocess_is_the_real_one() -> None:
    assert build_module.subprocess is subprocess


def test_only_programs_that_reach_a_migration_point_are_made_movable(tmp_path: Path) -> None:
    from faabric.toolchain.movable import MIGRATE_IMPORT, module_imports

    plain = build(GUESTS / "hello.c", cache_dir=tmp_path).read_bytes()
    mpi = build(GUESTS / "mpi_p2p.c", cache_dir=tmp_path).read_bytes()
    assert MIGRATE_IMPORT not in module_imports(plain)
    assert b"asyncify_start_unwind" not in plain
    assert MIGRATE_IMPORT in module_imports(mpi)
    assert b"asyncify_start_unwind" in mpi


def test_a_malformed_module_is_a_toolchain_error() -> None:
    from faabric.toolchain.movable import module_imports

    with pytest.raises(ToolchainError, match="not a WebAssembly module"):
        module_imports(b"ELF")
    with pytest.raises(ToolchainError, match="truncated"):
        module_imports(b"\0asm\x01\0\0\0\x02\x05\x01\x03env")


def test_clang_runs_a_stand_in_for_wasm_opt(tmp_path: Path) -> None:
    import subprocess

    from faabric.toolchain.movable import stand_in_tools

    tools = stand_in_tools(tmp_path)
    module = tmp_path / "m.wasm"
    module.write_bytes(b"unchanged")
    done = subprocess.run([str(tools / "wasm-opt"), str(module), "-O2", "-o", str(module)],
                          check=False)
    assert done.returncode == 0 and module.read_bytes() == b"unchanged"
    assert stand_in_tools(tmp_path) == tools  # made once


def test_programs_calling_mmap_build_against_the_emulation(tmp_path: Path) -> None:
    source = tmp_path / "mapped.c"
    source.write_text(
        "#include <sys/mman.h>\n"
        "int main(void) {\n"
        "  char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n"
        "  return p == MAP_FAILED || munmap(p, 4096) != 0;\n"
        "}\n"
    )
    wasm = build(source, cache_dir=tmp_path).read_bytes()
    assert wasm.startswith(b"\0asm")
    assert b"\x03env\x04mmap" not in wasm  # defined by the emulation, not imported


def _added(args: list[str]) -> list[str]:
    """What the driver's command line holds besides the user's arguments."""
    from faabric.toolchain.driver import command_line

    cmd = command_line(Path("clang-16"), args, cxx=False)
    return [arg for arg in cmd if arg not in args]


def test_default_flags_are_simd_o2_and_four_vectors_an_iteration() -> None:
    added = _added(["app.c", "-o", "app.wasm"])
    assert "-msimd128" in added and "-O2" in added
    assert added[added.index("-mllvm") + 1] == "-force-vector-interleave=4"


@pytest.mark.parametrize(("level", "interleave"), [
    ("-O0", False), ("-O1", False), ("-Os", False), ("-Oz", False), ("-O3", True),
    ("-Ofast", True),
])
def test_a_user_optimisation_level_wins(level: str, interleave: bool) -> None:
    from faabric.toolchain.driver import command_line

    cmd = command_line(Path("clang-16"), [level, "app.c"], cxx=False)
    assert [arg for arg in cmd if arg.startswith("-O")] == [level]
    assert ("-force-vector-interleave=4" in cmd) is interleave


def test_a_user_interleave_count_and_a_link_alone_get_none_added() -> None:
    own = ["-mllvm", "-force-vector-interleave=2", "app.c"]
    assert "-force-vector-interleave=4" not in _added(own)
    assert "-mllvm" not in _added(["app.o", "-o", "app.wasm"])


def test_the_drivers_defaults_are_in_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = build_module.cache_key(b"int main(void){return 0;}", (), "clang", cxx=False)
    monkeypatch.setattr(build_module, "defaults_identity", lambda: "-O3")
    assert build_module.cache_key(b"int main(void){return 0;}", (), "clang", cxx=False) != key
