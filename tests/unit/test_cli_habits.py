"""CLI habits without a cluster: completion scripts, where a queued app stands, progress lines
only when asked, and `status --watch` frames."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from typing import Any

import pytest

from faabric import cli
from faabric.commands import watch_status
from faabric.completion import script
from faabric.progress import QueueNotice, QueueSpot, Spinner, queue_spot


def _status(apps: list[tuple[int, str, int]], hosts: list[tuple[int, int]]) -> dict[str, Any]:
    return {"apps": [{"app_id": i, "state": s, "size": n} for i, s, n in apps],
            "hosts": [{"name": f"h{k}", "slots": t, "used": u}
                      for k, (t, u) in enumerate(hosts)]}


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_parse(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", shell]) == 0
    text = capsys.readouterr().out
    checker = shutil.which(shell)
    if checker is None:
        pytest.skip(f"{shell} is not installed")
    subprocess.run([checker, "-n"], input=text, text=True, check=True, timeout=30)


def test_bash_completion_offers_commands_and_their_options() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    text = script(cli._parser(), "bash")

    def complete(*words: str) -> list[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        probe = (f"{text}\nCOMP_WORDS=(faabric {quoted}); COMP_CWORD={len(words)}; "
                 "_faabric; printf '%s\\n' \"${COMPREPLY[@]}\"")
        done = subprocess.run([bash, "-c", probe], capture_output=True, text=True,
                              check=True, timeout=30)
        return done.stdout.split()

    assert complete("lo") == ["logs"]
    assert "--watch" in complete("status", "--w")
    assert "--tag-output" in complete("run", "-n", "4", "--t")
    assert complete("cluster", "") == ["-h", "--help", "up"]


def test_queue_spot_counts_apps_ahead_and_free_slots() -> None:
    status = _status([(3, "running", 4), (5, "queued", 2), (6, "queued", 4), (9, "queued", 1)],
                     [(4, 4), (4, 2)])
    assert queue_spot(status, 6) == QueueSpot(needed=4, free=2, ahead=1)
    assert queue_spot(status, 3) is None  # running
    assert QueueSpot(4, 2, 3).describe() == "waiting for 4 slots (2 free), 3 apps ahead"
    assert QueueSpot(1, 0, 1).describe() == "waiting for 1 slot (0 free), 1 app ahead"


def test_queue_notice_says_where_the_app_stands_then_erases_itself() -> None:
    out = io.StringIO()
    looks = [_status([(1, "running", 2), (2, "queued", 2)], [(2, 2)]),
             _status([(2, "running", 2)], [(2, 2)])]
    notice = QueueNotice(2, lambda: looks.pop(0) if len(looks) > 1 else looks[0], out,
                         show=True)
    deadline = time.monotonic() + 10
    while not out.getvalue().endswith("\x1b[K") or "queued" not in out.getvalue():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    notice.stop()
    assert "faabric: app 2 is queued: waiting for 2 slots (0 free), 0 apps ahead" in (
        out.getvalue())
    assert out.getvalue().endswith("\r\x1b[K")


def test_quiet_progress_prints_nothing() -> None:
    out = io.StringIO()
    with Spinner("compiling app.c", out, show=False):
        time.sleep(0.4)
    QueueNotice(1, lambda: _status([(1, "queued", 1)], [(1, 1)]), out, show=False).stop()
    assert out.getvalue() == ""


def test_a_spinner_erases_its_line() -> None:
    out = io.StringIO()
    with Spinner("compiling app.c", out, show=True):
        time.sleep(0.5)
    assert "compiling app.c" in out.getvalue() and out.getvalue().endswith("\r\x1b[K")


class _Planner:
    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def status(self) -> dict[str, Any]:
        self.calls += 1
        return _status([], [(2, 0)])

    def close(self) -> None:
        self.closed = True


def test_watch_prints_frames_and_closes(capsys: pytest.CaptureFixture[str]) -> None:
    planner = _Planner()
    assert watch_status(planner, cli.format_status, 0.01, frames=3) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.count("1 host\n") == 3 and planner.closed
    assert "every 0.01 s, Ctrl-C to stop" in out
