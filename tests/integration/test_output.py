"""Output as it is produced, on real processes: `faabric run` prints a granule's lines while
it runs, tags them with --tag-output, ends a trap with one line (the backtrace with -v), and
API clients follow GET /v1/apps/{id}/output; `faabric logs`, `status --watch` and the
completion scripts."""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from faabric.planner.output import Chunk, Ended
from faabric.toolchain import build
from tests.integration.conftest import GUESTS, Cluster

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def ticker(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """tests/guests/ticker.c compiled once, as a .wasm file."""
    path = tmp_path_factory.mktemp("ticker") / "ticker.wasm"
    path.write_bytes(build(GUESTS / "ticker.c", cache_dir=cache_dir / "builds").read_bytes())
    return path


def _lines(stream: IO[str]) -> queue.Queue[tuple[float, str | None]]:
    """The lines of `stream` with the time each arrived, then None at its end."""
    found: queue.Queue[tuple[float, str | None]] = queue.Queue()

    def read() -> None:
        for line in stream:
            found.put((time.monotonic(), line))
        found.put((time.monotonic(), None))

    threading.Thread(target=read, daemon=True).start()
    return found


def test_run_prints_a_line_before_the_app_ends(ticker: Path, process_env: dict[str, str],
                                               tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "faabric", "run", str(ticker), "--", "3", "2000"],
        env=process_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        lines = _lines(proc.stdout)
        first_at, first = lines.get(timeout=60)
        assert first == "tick 0 of granule 0\n"
        assert proc.poll() is None  # the app prints for 4 s more
        rest = []
        while (item := lines.get(timeout=60))[1] is not None:
            rest.append(item)
        assert [line for _, line in rest] == ["tick 1 of granule 0\n", "tick 2 of granule 0\n"]
        assert rest[0][0] - first_at > 1.0  # each line came when it was printed
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == "started 0\n"  # printed once, not again at the end
    finally:
        proc.kill()
        proc.wait()


def test_tag_output_prefixes_app_and_granule(run_cli: Cli, ticker: Path) -> None:
    result = run_cli("run", "-n", "2", "--slots", "2", "--tag-output", str(ticker), "--",
                     "2", "100")
    assert result.returncode == 0, result.stderr
    tagged = [re.fullmatch(r"\[(\d+),(\d)\]<stdout>:tick (\d) of granule (\d)", line)
              for line in result.stdout.splitlines()]
    assert all(tagged), result.stdout
    assert sorted((m[2], m[3]) for m in tagged if m) == [("0", "0"), ("0", "1"), ("1", "0"),
                                                         ("1", "1")]
    assert all(m[2] == m[4] for m in tagged if m)
    assert len({m[1] for m in tagged if m}) == 1  # one app id
    for index in (0, 1):  # each granule's lines in order
        assert [m[3] for m in tagged if m and m[2] == str(index)] == ["0", "1"]
    assert sorted(result.stderr.splitlines()) == [
        f"[{tagged[0][1]},0]<stderr>:started 0", f"[{tagged[0][1]},1]<stderr>:started 1"]


def test_a_trap_ends_with_one_line_naming_app_granule_and_cause(run_cli: Cli) -> None:
    result = run_cli("run", str(GUESTS / "trap.c"))
    assert result.returncode == 134
    assert result.stdout == "about to trap\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(r"faabric: app \d+ granule 0 on \S+ trapped: .*out of bounds.*",
                        lines[0]), lines[0]


def test_verbose_shows_the_traps_backtrace(run_cli: Cli) -> None:
    result = run_cli("run", "-v", str(GUESTS / "trap.c"))
    assert result.returncode == 134
    assert "wasm backtrace" in result.stderr
    assert re.search(r"^faabric: app \d+ granule 0 .*trapped", result.stderr, re.MULTILINE)


def test_api_clients_follow_the_output_stream(
    make_cluster: Callable[..., Cluster], ticker: Path
) -> None:
    cluster = make_cluster({"host-a": 2})
    client = cluster.client()
    try:
        digest = client.upload_module(ticker.read_bytes())
        app_id = client.submit({"module": digest, "size": 2, "args": ["3", "200"]})["app_id"]
        events = list(client.follow_output(app_id).events())
        doc = client.wait_app(app_id, 30)
        again = list(client.follow_output(app_id, start=1).events())  # kept for a while
    finally:
        client.close()
    chunks = [e for e in events if isinstance(e, Chunk)]
    assert events[-1] == Ended(len(chunks)) and [c.seq for c in chunks] == list(
        range(len(chunks)))
    for result in doc["results"]:
        for stream, name in ((1, "stdout"), (2, "stderr")):
            mine = [c for c in chunks if (c.index, c.stream) == (result["index"], stream)]
            assert b"".join(c.data for c in mine) == result[name]
            assert [c.offset for c in mine] == [sum(len(c.data) for c in mine[:i])
                                                for i in range(len(mine))]
    assert again == [*chunks[1:], Ended(len(chunks))]


def test_the_output_stream_of_an_unknown_app_is_404(two_hosts: Cluster) -> None:
    client = two_hosts.client()
    try:
        with pytest.raises(Exception, match="no app 999"):
            list(client.follow_output(999).events())
    finally:
        client.close()


def test_logs_prints_a_finished_apps_output(
    two_hosts: Cluster, wasm: dict[str, bytes], run_cli: Cli
) -> None:
    client = two_hosts.client()
    try:
        digest = client.upload_module(wasm["hello"])
        doc = client.submit({"module": digest, "size": 2, "program": "hello"}, wait=60)
    finally:
        client.close()
    result = run_cli("logs", "--planner", two_hosts.url, str(doc["app_id"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(r["stdout"].decode() for r in doc["results"])
    assert result.stderr == "to stderr\nto stderr\n"
    tagged = run_cli("logs", "--planner", two_hosts.url, "--tag-output", str(doc["app_id"]))
    assert f"[{doc['app_id']},1]<stdout>:granule 1 of 2" in tagged.stdout.splitlines()
    missing = run_cli("logs", "--planner", two_hosts.url, "999")
    assert missing.returncode == 1
    assert missing.stderr == "faabric: no app 999 (never submitted, or reset)\n"


def test_status_watch_redraws_until_ctrl_c(two_hosts: Cluster,
                                           process_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "faabric", "status", "--watch", "--interval", "0.3",
         "--planner", two_hosts.url],
        env=process_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        lines = _lines(proc.stdout)
        frames = 0
        while frames < 2:
            _, line = lines.get(timeout=30)
            assert line is not None, "the watch ended by itself"
            frames += line == "2 hosts\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == ""  # no traceback, nothing at all
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_parse_in_their_shell(run_cli: Cli, shell: str) -> None:
    result = run_cli("completion", shell)
    assert result.returncode == 0, result.stderr
    checker = shutil.which(shell)
    if checker is None:
        pytest.skip(f"{shell} is not installed")
    subprocess.run([checker, "-n"], input=result.stdout, text=True, check=True, timeout=30)
