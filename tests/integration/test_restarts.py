"""Restarts lose nothing silently, on real processes: the planner killed (-9) mid-app and
started again on its ports and journal, a worker frozen (SIGSTOP) until it is declared lost
and then thawed, and a worker killed and started again under the same name."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faabric.toolchain import build
from tests.integration.conftest import GUESTS, Cluster, start_planner, wait_until

pytestmark = pytest.mark.integration

QUICK = 20.0  # seconds within which an app on a settled cluster must be done


def hosts(cluster: Cluster) -> dict[str, int]:
    """Worker name -> used slots, as the planner counts them."""
    client = cluster.client()
    try:
        return {h["name"]: h["used"] for h in client.hosts()}
    finally:
        client.close()


def submit(cluster: Cluster, data: bytes, size: int, **extra: Any) -> int:
    client = cluster.client()
    try:
        digest = client.upload_module(data)
        doc = client.submit({"module": digest, "program": "guest", "size": size, **extra})
        return int(doc["app_id"])
    finally:
        client.close()


def run_quickly(cluster: Cluster, data: bytes, size: int) -> dict[str, Any]:
    """Submit an app and wait for it: it must be done within QUICK seconds."""
    began = time.monotonic()
    client = cluster.client(timeout=QUICK + 10)
    try:
        digest = client.upload_module(data)
        doc = client.submit({"module": digest, "program": "guest", "size": size}, wait=QUICK)
    finally:
        client.close()
    assert doc["state"] == "finished" and doc["status"] == 0, doc
    assert time.monotonic() - began < QUICK
    return doc


def messages(cluster: Cluster, app_id: int) -> list[str]:
    client = cluster.client()
    try:
        doc = client.app(app_id)
    finally:
        client.close()
    return sorted({r["outcome"].get("message", "") for r in doc["results"]})


def test_a_planner_killed_mid_app_restarts_and_its_client_gets_an_answer(
    process_env: dict[str, str], wasm: dict[str, bytes], tmp_path: Path
) -> None:
    journal = tmp_path / "planner.db"
    proc, url = start_planner(process_env, 2.0, journal=journal)
    cluster = Cluster(proc, url, process_env)
    try:
        cluster.add_worker("host-a", 2)
        control_port = int(cluster.client().config()["control_port"])
        program = tmp_path / "spin.wasm"
        program.write_bytes(wasm["spin"])
        run = subprocess.Popen(
            [sys.executable, "-m", "faabric", "run", "--planner", url, "-n", "2", "-v",
             str(program), "--", "300000"],
            env=process_env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        wait_until(lambda: hosts(cluster) == {"host-a": 2}, 30, "the app to run")
        first = max(int(a["app_id"]) for a in cluster.client().status()["apps"])
        cluster.planner.send_signal(signal.SIGKILL)
        cluster.planner.wait(timeout=10)
        port = int(url.rsplit(":", 1)[1])
        cluster.planner, _ = start_planner(process_env, 2.0, journal=journal, port=port,
                                           control_port=control_port)
        _, err = run.communicate(timeout=45)  # a definite answer, not a hang
        assert run.returncode == 1, err
        assert "the planner restarted while the app ran" in err, err
        assert "Traceback" not in err
        assert messages(cluster, first) == ["failed: the planner restarted while the app ran"]
        # The worker came back, was told to stop the old granules, and its slots are free.
        wait_until(lambda: hosts(cluster) == {"host-a": 0}, 30, "the old granules to stop")
        doc = run_quickly(cluster, wasm["hello"], 2)
        assert doc["app_id"] > first  # never a repeated id
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        cluster.stop()


def test_a_frozen_worker_declared_lost_rejoins_with_its_slots_right(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes]
) -> None:
    cluster = make_cluster({"host-a": 2, "host-b": 2}, keepalive=1.0)
    app_id = submit(cluster, wasm["spin"], 4, args=["300000"])
    wait_until(lambda: hosts(cluster) == {"host-a": 2, "host-b": 2}, 30, "the app to run")
    frozen = cluster.workers["host-a"]
    frozen.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: "host-a" not in hosts(cluster), 15, "host-a to be declared lost")
    finally:
        frozen.send_signal(signal.SIGCONT)
    assert messages(cluster, app_id)[-1].startswith("failed: worker host-a was lost")
    # It rejoins still running its two granules: they are counted, then stopped.
    wait_until(lambda: hosts(cluster) == {"host-a": 0, "host-b": 0}, 30,
               "host-a to rejoin and every old granule to stop")
    run_quickly(cluster, wasm["hello"], 4)
    assert hosts(cluster) == {"host-a": 0, "host-b": 0}


def test_a_worker_restarted_under_its_name_is_reached_on_its_new_address(
    make_cluster: Callable[..., Cluster], cache_dir: Path, tmp_path: Path
) -> None:
    mpi = build(GUESTS / "mpi_p2p.c", cache_dir=cache_dir / "builds")
    expected = (GUESTS / "expected" / "mpi_p2p.2.txt").read_text()
    cluster = make_cluster({"host-a": 1, "host-b": 1})

    def run_mpi() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "faabric", "run", "--planner", cluster.url, "-n", "2",
             str(mpi)], env=cluster.env, cwd=tmp_path, capture_output=True, text=True,
            timeout=QUICK + 30, stdin=subprocess.DEVNULL)

    first = run_mpi()  # host-a and host-b now have data-plane connections to each other
    assert (first.returncode, first.stdout) == (0, expected), first.stderr
    cluster.kill_worker("host-b")
    wait_until(lambda: "host-b" not in hosts(cluster), 15, "host-b to be gone")
    cluster.add_worker("host-b", 1)
    second = run_mpi()
    assert (second.returncode, second.stdout) == (0, expected), second.stderr
