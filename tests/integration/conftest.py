"""Real-process fixtures: a planner and worker processes on 127.0.0.1, guests built once.

Each cluster is started with `python -m faabric planner` / `faabric worker` exactly as a user
would, and torn down (SIGTERM, then SIGKILL) after the test. Waits poll with deadlines. Every
process gets the test cluster token through FAABRIC_TOKEN (so no test touches the user's
token file), and clients made here send it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from faabric.planner.client import PlannerClient
from faabric.toolchain import build

GUESTS = Path(__file__).resolve().parent.parent / "guests"
INTEGRATION_GUESTS = ("hello", "spin", "exit_code", "trap", "loop", "echo_input", "noop")
START_TIMEOUT = 30.0
TOKEN = "integration-test-cluster-token-0123456789"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Cluster:
    """A planner process and its worker processes."""

    planner: subprocess.Popen[str]
    url: str
    env: dict[str, str]
    workers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    @property
    def token(self) -> str:
        """The cluster token its processes were started with (FAABRIC_TOKEN, else the token
        file the planner made under XDG_CONFIG_HOME)."""
        if "FAABRIC_TOKEN" in self.env:
            return self.env["FAABRIC_TOKEN"]
        return (Path(self.env["XDG_CONFIG_HOME"]) / "faabric" / "token").read_text().strip()

    def client(self, timeout: float = 30.0) -> PlannerClient:
        return PlannerClient(self.url, token=self.token, timeout=timeout)

    def add_worker(self, name: str, slots: int) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faabric", "worker", "--planner", self.url,
             "--slots", str(slots), "--name", name],
            env=self.env, stdin=subprocess.DEVNULL, text=True,
        )
        self.workers[name] = proc
        client = self.client()
        try:
            wait_until(lambda: name in {h["name"] for h in client.hosts()} or
                       proc.poll() is not None, START_TIMEOUT, f"worker {name} to register")
        finally:
            client.close()
        assert proc.poll() is None, f"worker {name} exited with {proc.returncode}"

    def kill_worker(self, name: str) -> None:
        self.workers[name].send_signal(signal.SIGKILL)
        self.workers[name].wait(timeout=10)

    def stop(self) -> None:
        procs = [*self.workers.values(), self.planner]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_planner(
    env: dict[str, str], keepalive: float, *, journal: Path | None = None,
    port: int = 0, control_port: int = 0,
) -> tuple[subprocess.Popen[str], str]:
    """Start `faabric planner` (on free ports unless given); returns the process and its
    URL. Its journal is `journal`, else a new file of its own."""
    if journal is None:
        journal = Path(tempfile.mkdtemp(prefix="faabric-journal-")) / "planner.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "faabric", "planner", "--port", str(port), "--control-port",
         str(control_port), "--keepalive-timeout", str(keepalive), "--journal", str(journal)],
        env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    match = None
    while match is None and len(lines) < 20:  # it announces its URL once it serves
        lines.append(proc.stderr.readline())  # (after what it recovered from its journal)
        match = re.search(r"listening on (http://\S+)", lines[-1])
        if not lines[-1]:
            break
    if match is None:
        proc.kill()
        pytest.fail(f"planner did not start: {''.join(lines)!r}")
    sys.stderr.write("".join(lines[:-1]))
    # Keep draining its stderr so a chatty planner never blocks on a full pipe.
    threading.Thread(target=_echo, args=(proc.stderr,), daemon=True).start()
    return proc, match.group(1)


def _echo(stream: IO[str]) -> None:
    for line in stream:
        sys.stderr.write(line)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One module cache shared by the session's workers and builds."""
    return tmp_path_factory.mktemp("faabric-cache")


@pytest.fixture(scope="session")
def wasm(cache_dir: Path) -> dict[str, bytes]:
    """The integration guests, compiled once: name -> wasm bytes."""
    return {
        name: build(GUESTS / f"{name}.c", cache_dir=cache_dir / "builds").read_bytes()
        for name in INTEGRATION_GUESTS
    }


@pytest.fixture
def process_env(cache_dir: Path) -> dict[str, str]:
    return clean_env(cache_dir)


def clean_env(cache_dir: Path) -> dict[str, str]:
    """This process's environment without what would change faabric's behaviour (a config
    file, a token file, the OMP_* variables `faabric run` passes on, the user's planner
    journal), caching into `cache_dir` and with the test cluster token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    env["XDG_CACHE_HOME"] = str(cache_dir)
    env["XDG_CONFIG_HOME"] = str(cache_dir / "config")  # never the user's token file
    env["FAABRIC_TOKEN"] = TOKEN
    env["FAABRIC_JOURNAL"] = "none"  # planners started by hand keep none (start_planner's do)
    env.pop("FAABRIC_CONFIG", None)
    env.pop("FAABRIC_TOKEN_FILE", None)
    return env


@pytest.fixture
def make_cluster(process_env: dict[str, str]) -> Iterator[Callable[..., Cluster]]:
    """Start a planner plus workers `name -> slots`; everything is stopped after the test."""
    clusters: list[Cluster] = []

    def make(workers: dict[str, int], keepalive: float = 2.0) -> Cluster:
        proc, url = start_planner(process_env, keepalive)
        cluster = Cluster(proc, url, process_env)
        clusters.append(cluster)
        for name, slots in workers.items():
            cluster.add_worker(name, slots)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.fixture
def two_hosts(make_cluster: Callable[..., Cluster]) -> Cluster:
    """Planner + 2 workers with 2 slots each, the shape the issue's checks use."""
    return make_cluster({"host-a": 2, "host-b": 2})


@pytest.fixture
def run_cli(
    process_env: dict[str, str], tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `faabric ARGS...` as a user would; returns the completed process."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "faabric", *args], env=process_env, cwd=tmp_path,
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run
