"""MPI message passing: faabric against OpenMPI on the same C program, plus a socket floor.

`kernels/mpi_bench.c` is built with `faabric cc` and with OpenMPI's `mpicc`, and run at 2
and 4 ranks:

* one host: faabric with one worker process (ranks copy memory to memory); OpenMPI with its
  default shared-memory transport;
* two hosts: faabric with two worker processes (ranks talk over TCP on 127.0.0.1); OpenMPI
  with `--mca btl tcp,self`.

The program times itself (MPI_Wtime around each repetition, medians), so process start-up is
excluded. The transport floor is a plain Python TCP ping-pong between two processes.
OpenMPI rows are skipped, with a note, when `mpicc`/`mpirun` are missing.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import KERNEL_DIR, Row, fmt_time, versus

SOURCE = KERNEL_DIR / "mpi_bench.c"
RUN_TIMEOUT = 600.0
Measurements = dict[tuple[str, int], float]  # (what, bytes) -> median seconds


@dataclass(frozen=True, slots=True)
class Setup:
    """One placement of the world: `ranks` ranks over `hosts` hosts."""

    ranks: int
    hosts: int

    @property
    def label(self) -> str:
        where = "one host" if self.hosts == 1 else f"{self.hosts} hosts"
        return f"{self.ranks} ranks, {where}"


SETUPS = (Setup(2, 1), Setup(2, 2), Setup(4, 1), Setup(4, 2))


def openmpi_missing() -> str | None:
    """Why OpenMPI cannot be measured, or None if it can."""
    for tool in ("mpicc", "mpirun"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install openmpi-bin libopenmpi-dev)"
    return None


def parse(text: str) -> Measurements:
    found: Measurements = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("pingpong", "allreduce", "barrier", "bcast"):
            found[(parts[0], int(parts[1]))] = float(parts[2])
    return found


def run_faabric(wasm: Path, setup: Setup, quick: bool) -> Measurements:
    slots = setup.ranks // setup.hosts
    cmd = ["faabric", "run", "-n", str(setup.ranks), "--hosts", str(setup.hosts),
           "--slots", str(slots), str(wasm), *(["--", "--quick"] if quick else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"faabric run failed: {done.stderr.strip()[-500:]}")
    return parse(done.stdout)


def run_openmpi(binary: Path, setup: Setup, quick: bool) -> Measurements:
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(setup.ranks)]
    if setup.hosts > 1:
        cmd += ["--mca", "btl", "tcp,self"]
    cmd += [str(binary), *(["--quick"] if quick else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"mpirun failed: {done.stderr.strip()[-500:]}")
    return parse(done.stdout)


def _echo(port: int, rounds: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(rounds):
            sock.sendall(_recv_exact(sock, 8))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def socket_floor(rounds: int) -> float:
    """Median one-way time of an 8-byte ping-pong between two Python processes over TCP."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        peer = multiprocessing.get_context("spawn").Process(target=_echo, args=(port, rounds))
        peer.start()
        conn, _ = server.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            conn.sendall(b"12345678")
            _recv_exact(conn, 8)
            samples.append((time.perf_counter() - start) / 2)
    peer.join(10)
    return statistics.median(samples)


def build(cache: Path, native_dir: Path, with_openmpi: bool) -> tuple[Path, Path | None]:
    from faabric.toolchain import build as faabric_build

    wasm = faabric_build(SOURCE, cache_dir=cache)
    if not with_openmpi:
        return wasm, None
    native_dir.mkdir(parents=True, exist_ok=True)
    binary = native_dir / "mpi_bench"
    subprocess.run(["mpicc", "-O2", str(SOURCE), "-o", str(binary)], check=True,
                   capture_output=True)
    return wasm, binary


def measure(cache: Path, native_dir: Path, quick: bool, notes: list[str]) -> list[Row]:
    """All MPI rows: every setup, faabric vs OpenMPI, and the 8 B two-host socket floor."""
    missing = openmpi_missing()
    if missing is not None:
        notes.append(f"OpenMPI not measured: {missing}.")
    wasm, binary = build(cache, native_dir, missing is None)
    floor = socket_floor(500 if quick else 5000)
    notes.append(f"MPI: Python TCP ping-pong floor (8 B one-way, two processes): "
                 f"{fmt_time(floor)}; OpenMPI {_openmpi_version()}.")
    rows: list[Row] = []
    for setup in SETUPS:
        ours = run_faabric(wasm, setup, quick)
        theirs = run_openmpi(binary, setup, quick) if binary is not None else {}
        rows += list(_rows(setup, ours, theirs, floor))
    return rows


def _rows(setup: Setup, ours: Measurements, theirs: Measurements,
          floor: float) -> Iterator[Row]:
    peer = "OpenMPI " + ("shared memory" if setup.hosts == 1 else "TCP")
    for (what, size), value in sorted(ours.items()):
        goal, limit = _goal(setup, what, size)
        label = f"MPI {what}{'' if what == 'barrier' else ' ' + _size(size)}, {setup.label}"
        if (what, size) == ("pingpong", 8) and setup.hosts == 1:
            met = value <= 10e-6
            yield Row(label, fmt_time(value), peer, _fmt(theirs.get((what, size))),
                      _ratio(value, theirs.get((what, size))), "<= 10 µs", met)
            continue
        yield versus(label, value, peer, theirs.get((what, size)), fmt=fmt_time, goal=goal,
                     limit=limit)
        if (what, size) == ("pingpong", 8) and setup.hosts > 1:
            yield versus(label, value, "Python TCP socket floor", floor, fmt=fmt_time,
                         goal="<= 1.3x floor", limit=1.3)


def _goal(setup: Setup, what: str, size: int) -> tuple[str, float | None]:
    big = (what, size) in (("pingpong", 16 << 20), ("allreduce", 8 << 20))
    if big:
        return "<= 1.2x OpenMPI", 1.2
    return "", None


def _size(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size // scale} {unit}"
    return f"{size} B"


def _fmt(value: float | None) -> str:
    return "skipped" if value is None else fmt_time(value)


def _ratio(ours: float, theirs: float | None) -> float | None:
    return None if not theirs else ours / theirs


def _openmpi_version() -> str:
    try:
        out = subprocess.run(["mpirun", "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "(not installed)"
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else "(unknown version)"


if __name__ == "__main__":  # a quick look without the rest of the suite
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        notes: list[str] = []
        from bench.common import render_text

        print(render_text(measure(Path(tmp) / "c", Path(tmp) / "n",
                                  quick=os.environ.get("QUICK", "0") != "0", notes=notes)))
        print("\n".join(notes))
