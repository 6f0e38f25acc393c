"""Apps end with their clients, on real processes: `DELETE /v1/apps/{id}`, `faabric cancel`,
`faabric run` interrupted (SIGINT, SIGTERM) or killed, `--detach`; and the per-granule output
limit, truncation said in the result and on stderr, never inside stdout."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import GUESTS, Cluster, wait_until

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
QUICK = 15.0  # seconds within which a freed slot must take the next app (the spin takes 300)


def running_apps(cluster: Cluster) -> list[dict[str, Any]]:
    client = cluster.client()
    try:
        return [a for a in client.status()["apps"] if a["state"] == "running"]
    finally:
        client.close()


def submit(cluster: Cluster, data: bytes, **extra: Any) -> int:
    client = cluster.client()
    try:
        digest = client.upload_module(data)
        doc = client.submit({"module": digest, "program": "guest", **extra})
        return int(doc["app_id"])
    finally:
        client.close()


def runs_at_once(cluster: Cluster, data: bytes) -> None:
    """The next app takes the only slot and finishes within QUICK seconds."""
    began = time.monotonic()
    client = cluster.client(timeout=QUICK + 10)
    try:
        digest = client.upload_module(data)
        doc = client.submit({"module": digest, "program": "noop"}, wait=QUICK)
    finally:
        client.close()
    assert doc["state"] == "finished" and doc["status"] == 0, doc
    assert time.monotonic() - began < QUICK


def cancelled_by(cluster: Cluster, app_id: int) -> list[str]:
    client = cluster.client()
    try:
        doc = client.app(app_id)
    finally:
        client.close()
    assert doc["state"] == "finished"
    return [r["outcome"]["message"] for r in doc["results"]]


def start_run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "faabric", "run", *args], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_delete_frees_the_slot_of_a_long_app(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes]
) -> None:
    cluster = make_cluster({"host-a": 1})
    app_id = submit(cluster, wasm["spin"], args=["300000"])
    wait_until(lambda: bool(running_apps(cluster)), 30, "the spinning app to run")
    client = cluster.client()
    try:
        doc = client.cancel(app_id)
        assert (doc["cancelled"], doc["status"]) == (True, 143)
        assert client.cancel(app_id)["cancelled"] is False  # idempotent
    finally:
        client.close()
    runs_at_once(cluster, wasm["noop"])
    assert cancelled_by(cluster, app_id) == ["cancelled: by client"]


def test_faabric_cancel_frees_the_slot(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes], run_cli: Cli
) -> None:
    cluster = make_cluster({"host-a": 1})
    app_id = submit(cluster, wasm["loop"])
    wait_until(lambda: bool(running_apps(cluster)), 30, "the looping app to run")
    result = run_cli("cancel", "--planner", cluster.url, str(app_id), "999")
    assert result.returncode == 1  # app 999 is unknown
    assert result.stderr.splitlines() == [
        f"faabric: cancelled app {app_id}", "faabric: no app 999 (never submitted, or reset)"]
    runs_at_once(cluster, wasm["noop"])


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_cancels_its_app_in_one_line(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes], process_env: dict[str, str],
    tmp_path: Path, signum: int, status: int,
) -> None:
    cluster = make_cluster({"host-a": 1})
    proc = start_run(process_env, tmp_path, "--planner", cluster.url, str(GUESTS / "loop.c"))
    try:
        wait_until(lambda: bool(running_apps(cluster)), 60, "the run's app to start")
        app_id = running_apps(cluster)[0]["app_id"]
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status
    assert (out, err) == ("", f"faabric: cancelled app {app_id}\n")
    runs_at_once(cluster, wasm["noop"])
    assert cancelled_by(cluster, app_id) == ["cancelled: by client"]


def test_a_killed_run_takes_its_app_with_it(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes], process_env: dict[str, str],
    tmp_path: Path,
) -> None:
    cluster = make_cluster({"host-a": 1})
    proc = start_run(process_env, tmp_path, "--planner", cluster.url, str(GUESTS / "loop.c"))
    try:
        wait_until(lambda: bool(running_apps(cluster)), 60, "the run's app to start")
        app_id = running_apps(cluster)[0]["app_id"]
    finally:
        proc.kill()  # no chance to cancel: its connection closes with it
        proc.communicate(timeout=30)
    runs_at_once(cluster, wasm["noop"])
    assert cancelled_by(cluster, app_id) == ["cancelled: by client (its connection closed)"]


def test_an_interrupted_run_on_its_own_cluster_stops_cleanly(
    process_env: dict[str, str], tmp_path: Path
) -> None:
    proc = start_run(process_env, tmp_path, "-v", "--slots", "1", str(GUESTS / "loop.c"))
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:  # -v says when the app was submitted
            seen.append(line)
            if "submitted app" in line:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [*seen, *err.splitlines(keepends=True)]
    assert proc.returncode == 130, "".join(lines)
    assert "Traceback" not in "".join(lines)
    assert [line for line in lines if line.startswith("faabric: cancelled")] == [
        "faabric: cancelled app 1\n"]


def test_detach_returns_at_once_and_the_app_runs_on(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes], run_cli: Cli
) -> None:
    cluster = make_cluster({"host-a": 1})
    result = run_cli("run", "--planner", cluster.url, "--detach", str(GUESTS / "loop.c"))
    assert result.returncode == 0, result.stderr
    app_id = int(result.stdout)
    wait_until(lambda: [a["app_id"] for a in running_apps(cluster)] == [app_id], 30,
               "the detached app to run")
    time.sleep(1.0)  # the run's connection is long closed: the app runs on
    assert [a["app_id"] for a in running_apps(cluster)] == [app_id]
    assert run_cli("cancel", "--planner", cluster.url, str(app_id)).returncode == 0
    runs_at_once(cluster, wasm["noop"])


def test_run_reports_truncated_output_on_stderr_only(run_cli: Cli) -> None:
    result = run_cli("run", "-n", "2", "--slots", "2", "--output-limit", "9",
                     str(GUESTS / "hello.c"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "granule 0granule 1"
    assert result.stderr.splitlines() == [
        "to stderrto stderr"
        "faabric: output truncated: granules 0-1 wrote more than the workers' output limit "
        "(output_limit) to stdout or stderr; the rest was dropped"]


def test_a_workers_output_limit_flags_the_result(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes], process_env: dict[str, str]
) -> None:
    process_env["FAABRIC_OUTPUT_LIMIT"] = "9"  # the worker's configuration
    cluster = make_cluster({"host-a": 2})
    client = cluster.client()
    try:
        digest = client.upload_module(wasm["hello"])
        doc = client.submit({"module": digest, "size": 2, "program": "hello"}, wait=60)
        short = client.upload_module(wasm["noop"])
        whole = client.submit({"module": short, "program": "noop"}, wait=60)
    finally:
        client.close()
    assert doc["truncated"] is True and doc["status"] == 0
    assert [(r["stdout"], r["truncated"]) for r in doc["results"]] == [
        (b"granule 0", True), (b"granule 1", True)]
    assert whole["truncated"] is False
