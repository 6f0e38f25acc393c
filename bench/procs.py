"""A planner and worker processes started as a user would, with the workers' logs kept.

`python -m faabric planner` on free ports and `python -m faabric worker --slots S` per
worker, like tests/integration/conftest.py; every process's stderr is drained into
`ProcessCluster.log` (and so never blocks on a full pipe), so a benchmark can check what the
workers reported while it ran. The processes are always stopped (SIGTERM, then SIGKILL). The
cluster gets a token of its own (`ProcessCluster.token`, given to the processes in
FAABRIC_TOKEN), so the user's token file is neither read nor made.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

START_TIMEOUT = 60.0


@dataclass
class ProcessCluster:
    """A running planner, its workers (by name) and every line they wrote to stderr."""

    url: str
    env: dict[str, str]
    token: str
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs[name] = proc
        return proc

    def _drain(self, stream: IO[str]) -> None:
        def keep() -> None:
            for line in stream:
                self.log.append(line)

        threading.Thread(target=keep, daemon=True).start()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def process_cluster(cache: Path, workers: dict[str, int],
                    keepalive: float | None = None) -> Iterator[ProcessCluster]:
    """A planner plus workers `name -> slots`, registered before this yields; `keepalive`:
    the planner's --keepalive-timeout (default: its own)."""
    from faabric.planner.client import PlannerClient
    from faabric.transport.auth import TOKEN_ENV, new_token

    token = new_token()
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    env[TOKEN_ENV] = token
    env.pop("FAABRIC_CONFIG", None)
    env.pop("FAABRIC_TOKEN_FILE", None)
    cluster = ProcessCluster("", env, token)
    try:
        extra = [] if keepalive is None else ["--keepalive-timeout", f"{keepalive:g}"]
        planner = cluster._spawn("planner", [sys.executable, "-m", "faabric", "planner",
                                             "--port", "0", "--control-port", "0", *extra])
        assert planner.stderr is not None
        line = planner.stderr.readline()  # the planner announces its URL first
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            raise RuntimeError(f"the planner did not start: {line!r}")
        cluster.url = match.group(1)
        cluster._drain(planner.stderr)
        for name, slots in workers.items():
            proc = cluster._spawn(name, [sys.executable, "-m", "faabric", "worker", "--planner",
                                         cluster.url, "--slots", str(slots), "--name", name])
            assert proc.stderr is not None
            cluster._drain(proc.stderr)
        client = PlannerClient(cluster.url, token=token)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while {h["name"] for h in client.hosts()} < set(workers):
                dead = [n for n, p in cluster.procs.items() if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"workers did not register (exited: {dead}): "
                                       f"{''.join(cluster.log[-20:])}")
                time.sleep(0.05)
        finally:
            client.close()
        yield cluster
    finally:
        cluster.stop()
