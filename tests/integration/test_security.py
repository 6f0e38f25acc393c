"""The cluster token with real processes: a planner refuses workers, clients and raw sockets
that do not know it, keeps serving, and ignores a registered worker's forged reports."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faabric import __version__
from faabric.errors import AuthError
from faabric.messages.control import CONTROL_CODEC, Register, Registered, Report
from faabric.messages.types import Exited, GranuleResult
from faabric.planner.client import PlannerClient
from faabric.transport.auth import CONTROL, connect_handshake
from faabric.transport.framing import FramedSocket, connect
from tests.integration.conftest import GUESTS, START_TIMEOUT, Cluster, clean_env, wait_until

pytestmark = pytest.mark.integration

WRONG = "a-token-of-some-other-cluster-000000"
RSS_GROWTH_LIMIT = 20 << 20


class LoggedCluster(Cluster):
    """A cluster whose planner's stderr lines are kept in `log`."""

    log: list[str]


@pytest.fixture
def logged(process_env: dict[str, str]) -> Iterator[Callable[[dict[str, str]], LoggedCluster]]:
    """Start a planner (without workers) in `env`; stopped after the test."""
    started: list[LoggedCluster] = []

    def start(env: dict[str, str]) -> LoggedCluster:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faabric", "planner", "--port", "0", "--control-port", "0",
             "--keepalive-timeout", "2"],
            env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        match = re.search(r"listening on (http://\S+)", proc.stderr.readline())
        assert match is not None, "the planner did not start"
        cluster = LoggedCluster(proc, match.group(1), env)
        cluster.log = []
        started.append(cluster)
        stream = proc.stderr

        def keep() -> None:
            for line in stream:
                cluster.log.append(line)

        threading.Thread(target=keep, daemon=True).start()
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def control_port(cluster: Cluster) -> int:
    client = cluster.client()
    try:
        return int(client.config()["control_port"])
    finally:
        client.close()


def rss(pid: int) -> int:
    """The process's resident set size in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def logged_line(cluster: LoggedCluster, pattern: str) -> str:
    wait_until(lambda: any(re.search(pattern, line) for line in cluster.log), 10,
               f"the planner to log {pattern!r}")
    return next(line for line in cluster.log if re.search(pattern, line))


def faabric(env: dict[str, str], *args: str, timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "faabric", *args], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    return result


# -- workers ----------------------------------------------------------------------------------


def test_a_worker_with_a_wrong_token_is_refused_and_the_planner_keeps_serving(
    logged: Callable[[dict[str, str]], LoggedCluster], process_env: dict[str, str],
) -> None:
    cluster = logged(process_env)
    result = faabric(dict(process_env, FAABRIC_TOKEN=WRONG), "worker", "--planner",
                     cluster.url, "--slots", "1", "--name", "intruder", timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"faabric: the planner at {cluster.url} refused this "
                                     "token (the cluster token is not valid)")
    # On the control port itself: the handshake fails before anything else is read.
    sock = connect("127.0.0.1", control_port(cluster), timeout=10)
    with pytest.raises(AuthError, match=r"^the planner at here refused this worker's token$"):
        connect_handshake(sock, WRONG, CONTROL, peer="the planner at here", me="worker")
    sock.close()
    line = logged_line(cluster, "refused a control connection")
    assert re.fullmatch(r"faabric faabric\.transport\.auth: refused a control connection from "
                        r"127\.0\.0\.1:\d+: it does not know the cluster token\n", line)
    cluster.add_worker("host-a", 1)
    assert [h["name"] for h in cluster.client().hosts()] == ["host-a"]


def test_a_huge_frame_before_authenticating_is_closed_without_memory_growth(
    logged: Callable[[dict[str, str]], LoggedCluster], process_env: dict[str, str],
) -> None:
    cluster = logged(process_env)
    port = control_port(cluster)
    before = rss(cluster.planner.pid)
    junk = b"\xff" * (1 << 20)
    started = time.monotonic()
    for _ in range(20):  # a 4 GiB frame announced, then a megabyte of it
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            try:
                sock.sendall(b"\xff\xff\xff\xf0" + junk)
                while sock.recv(1 << 16):
                    pass
            except (ConnectionResetError, BrokenPipeError):
                pass  # closed with our bytes unread
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)
    silent.sendall(b"\x7f\xff\xff\xff")  # a length prefix, then nothing
    silent.settimeout(15)
    assert silent.recv(64).startswith(b"FAABRIC")  # the greeting: nothing more comes
    assert silent.recv(64) == b""  # closed at the handshake deadline
    silent.close()
    assert time.monotonic() - started < 15
    assert rss(cluster.planner.pid) - before < RSS_GROWTH_LIMIT
    assert cluster.planner.poll() is None
    logged_line(cluster, "sent no proof of the cluster token within 5 s")
    cluster.add_worker("host-a", 1)  # still serving


def test_a_forged_report_for_another_workers_granule_is_ignored(
    logged: Callable[[dict[str, str]], LoggedCluster], process_env: dict[str, str],
    wasm: dict[str, bytes],
) -> None:
    cluster = logged(process_env)
    cluster.add_worker("host-a", 1)
    client = cluster.client()
    digest = client.upload_module(wasm["spin"])
    app_id = client.submit({"module": digest, "size": 1, "args": ["1500"]})["app_id"]
    wait_until(lambda: client.app(app_id)["state"] == "running", 10, "the app to start")
    # A worker of the cluster (it knows the token) reports the granule it does not run.
    sock = connect("127.0.0.1", control_port(cluster), timeout=10)
    connect_handshake(sock, cluster.token, CONTROL, peer="the planner", me="worker")
    intruder = FramedSocket(sock, CONTROL_CODEC)
    intruder.send(Register("intruder", 1, __version__, ""))
    assert isinstance(intruder.recv(10), Registered)
    for host in ("intruder", "host-a"):  # the connection says who it is, not the message
        intruder.send(Report(GranuleResult(app_id, 0, host, Exited(7))))
    line = logged_line(cluster, "ignored a message of worker intruder")
    assert line.endswith(f"the result of granule 0 of app {app_id}, which it does not run\n")
    assert client.app(app_id)["finished"] is None
    doc = client.wait_app(app_id, 30)
    (result,) = doc["results"]
    assert (result["host"], result["status"], result["stdout"]) == ("host-a", 0, b"spun 0\n")
    intruder.close()
    client.close()


# -- HTTP -------------------------------------------------------------------------------------


def test_http_clients_need_the_token_but_health_does_not(two_hosts: Cluster) -> None:
    import http.client
    import json
    from urllib.parse import urlsplit

    url = urlsplit(two_hosts.url)
    for authorization in (None, f"Bearer {WRONG}"):
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        headers = {} if authorization is None else {"Authorization": authorization}
        conn.request("GET", "/v1/status", headers=headers)
        response = conn.getresponse()
        assert response.status == 401
        assert set(json.loads(response.read())) == {"error"}
        conn.request("GET", "/v1/health", headers=headers)
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["status"] == "ok"
        conn.close()
    wrong = PlannerClient(two_hosts.url, token=WRONG, timeout=10)
    with pytest.raises(AuthError, match="refused this token"):
        wrong.submit({"module": "0" * 64, "size": 1})
    wrong.close()
    assert len(two_hosts.client().hosts()) == 2


def test_cli_clients_say_what_is_wrong_in_one_line(
    two_hosts: Cluster, tmp_path: Path
) -> None:
    env = dict(two_hosts.env, FAABRIC_TOKEN=WRONG)
    result = faabric(env, "status", "--planner", two_hosts.url)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"faabric: the planner at {two_hosts.url} refused this "
                                     "token (the cluster token is not valid)")
    loose = tmp_path / "token"
    loose.write_text(two_hosts.token)
    loose.chmod(0o644)
    result = faabric(env, "status", "--planner", two_hosts.url, "--token-file", str(loose))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"faabric: the token file {loose} may be accessed by "
                                     f"group or others (mode 644): run 'chmod 600 {loose}'")
    loose.chmod(0o600)  # --token-file wins over FAABRIC_TOKEN
    result = faabric(env, "status", "--planner", two_hosts.url, "--token-file", str(loose))
    assert result.returncode == 0 and result.stdout.startswith("2 hosts"), result.stderr
    empty = {k: v for k, v in env.items() if k != "FAABRIC_TOKEN"}
    result = faabric(dict(empty, XDG_CONFIG_HOME=str(tmp_path / "nothing")), "status",
                     "--planner", two_hosts.url)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"faabric: no cluster token: set FAABRIC_TOKEN or create "
                                     f"{tmp_path}/nothing/faabric/token (faabric planner "
                                     "creates it)")


# -- the token file ---------------------------------------------------------------------------


def test_the_planner_makes_the_token_file_its_workers_and_clients_read(
    logged: Callable[[dict[str, str]], LoggedCluster], cache_dir: Path, tmp_path: Path,
) -> None:
    env = clean_env(cache_dir)
    del env["FAABRIC_TOKEN"]
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    cluster = logged(env)
    path = tmp_path / "config" / "faabric" / "token"
    logged_line(cluster, f"created the cluster token {re.escape(str(path))}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
    cluster.add_worker("host-a", 1)  # reads the file
    result = faabric(env, "status", "--planner", cluster.url)
    assert result.returncode == 0 and result.stdout.startswith("1 host"), result.stderr
    again = logged(env)  # a second planner uses the same token, and says nothing about it
    time.sleep(0.5)
    assert not any("created" in line for line in again.log)
    assert os.listdir(path.parent) == ["token"]


def test_an_embedded_run_needs_no_token(cache_dir: Path, tmp_path: Path) -> None:
    env = clean_env(cache_dir)
    del env["FAABRIC_TOKEN"]
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    result = faabric(env, "run", "-n", "2", "--hosts", "2", "--slots", "1",
                     str(GUESTS / "hello.c"), cwd=tmp_path, timeout=START_TIMEOUT + 90)
    assert result.returncode == 0, result.stderr
    granules = [line for line in result.stdout.splitlines() if line.startswith("granule")]
    assert sorted(granules) == ["granule 0 of 2", "granule 1 of 2"]  # as they came
    assert not (tmp_path / "config").exists()
