"""faabric's C libraries: archive format, cached builds per flavour, and what programs link."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from faabric.errors import ToolchainError
from faabric.toolchain import build
from faabric.toolchain import libraries as libs
from faabric.toolchain.archive import archive_bytes, defined_symbols
from faabric.toolchain.driver import environment, find_compiler, library_flags

GUESTS = Path(__file__).resolve().parent.parent / "guests"


def _archives(tmp_path: Path, threaded: bool) -> list[Path]:
    compiler = find_compiler(cxx=False)
    return libs.ensure_archives(compiler.path, compiler.identity, library_flags(), threaded,
                                tmp_path, environment())


def test_archive_indexes_every_defined_symbol(tmp_path: Path) -> None:
    (archive,) = _archives(tmp_path, threaded=False)
    data = archive.read_bytes()
    assert data.startswith(b"!<arch>\n/ ")
    count = int.from_bytes(data[68:72], "big")
    assert count > 150  # the MPI API and the library's internal symbols
    names = data[72 + 4 * count :].split(b"\0")[:count]
    assert b"MPI_Send" in names and b"MPI_Allreduce" in names and b"fm_raise" in names
    assert b"fm_kernel_for" in names  # internal but global: members depend on each other


def test_symbol_index_agrees_with_llvm_nm(tmp_path: Path) -> None:
    nm = shutil.which("llvm-nm-16") or shutil.which("llvm-nm-14") or shutil.which("llvm-nm")
    if nm is None:
        pytest.skip("llvm-nm is not installed")
    obj = tmp_path / "sample.o"
    source = tmp_path / "sample.c"
    source.write_text("int shared = 3;\nstatic int hidden(int x) { return x; }\n"
                      "int visible(int x) { return hidden(x) + shared; }\n"
                      "extern int elsewhere(void);\nint calls(void) { return elsewhere(); }\n")
    subprocess.run([str(find_compiler(cxx=False).path), "--target=wasm32-wasi", "-O1", "-c",
                    str(source), "-o", str(obj)], check=True)
    listed = subprocess.run([nm, "--defined-only", "--extern-only", "--format=just-symbols",
                             str(obj)], capture_output=True, text=True, check=True).stdout
    assert sorted(defined_symbols(obj.read_bytes())) == sorted(listed.split())
    assert sorted(defined_symbols(obj.read_bytes())) == ["calls", "shared", "visible"]


def test_flavours_are_cached_separately_and_reused(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (plain,) = _archives(tmp_path, threaded=False)
    threaded = _archives(tmp_path, threaded=True)
    assert plain.name.startswith("libmpi-plain-")
    assert threaded[0].name.startswith("libmpi-threads-")
    monkeypatch.setattr(libs.subprocess, "run", _no_compiler)
    assert _archives(tmp_path, threaded=False) == [plain]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({plain.name,
                                                                 *(p.name for p in threaded)})


def _no_compiler(*args: object, **kwargs: object) -> None:
    raise AssertionError("the compiler ran")


def test_concurrent_builds_leave_one_complete_archive(tmp_path: Path) -> None:
    results: list[list[Path]] = []
    threads = [threading.Thread(target=lambda: results.append(_archives(tmp_path, False)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results[0] == results[1]
    assert [p.name for p in tmp_path.iterdir()] == [results[0][0].name]


def test_thread_only_libraries_are_left_out_of_plain_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = libs.Library("omp", threaded_only=True)
    monkeypatch.setattr(libs, "LIBRARIES", (*libs.LIBRARIES, extra))
    assert extra not in libs.libraries_for(threaded=False)
    assert extra in libs.libraries_for(threaded=True)


def test_a_library_that_does_not_compile_reports_the_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "lib" / "broken"
    broken.mkdir(parents=True)
    (broken / "bad.c").write_text("int f(void) { return undeclared_thing; }\n")
    monkeypatch.setattr(libs, "LIB_DIR", tmp_path / "lib")
    monkeypatch.setattr(libs, "LIBRARIES", (libs.Library("broken"),))
    with pytest.raises(ToolchainError, match=r"(?s)building the broken library failed:.*"
                                             r"undeclared_thing"):
        _archives(tmp_path / "cache", threaded=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_plain_programs_import_nothing_from_mpi(tmp_path: Path) -> None:
    # Import module names appear verbatim in a module's import section.
    hello = build(GUESTS / "hello.c", cache_dir=tmp_path).read_bytes()
    assert b"faabric_mpi" not in hello and b"MPI_" not in hello
    ring = build(GUESTS / "mpi_p2p.c", cache_dir=tmp_path).read_bytes()
    assert b"\x0bfaabric_mpi\x09fmpi_init" in ring


def test_archive_bytes_layout() -> None:
    data = archive_bytes([("a.o", b"xyz", ["alpha"]), ("long_member_name.o", b"\0asm", [])])
    assert data.startswith(b"!<arch>\n")
    assert b"a.o/\nlong_member_name.o/\n" in data
    assert data.count(b"`\n") == 4  # index, names, two members
