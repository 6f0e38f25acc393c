"""`faabric run` and its app: cancelled on SIGINT/SIGTERM with one line on stderr, bound to
the run's connection, detached on request, truncated output said on stderr; and `faabric
cancel`. A fake planner client stands for the planner (real signals are sent)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faabric import cli
from faabric.config import RunConfig
from faabric.errors import ApiError, ConfigError
from faabric.run import report, run_program

DIGEST = "ab" * 32
PLANNER = "http://127.0.0.1:1"


class FakeClient:
    """Stands for PlannerClient: records calls; `wait_app` may send this process a signal
    (and then waits for it to act, as a real wait on the planner would)."""

    calls: list[tuple[str, Any, dict[str, Any]]] = []
    signal_in_wait: int | None = None

    def __init__(self, url: str, *, token: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout

    def upload_module(self, data: bytes) -> str:
        return DIGEST

    def submit(self, app: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("submit", app["program"], kwargs))
        return {"app_id": 7, "state": "running", "size": app["size"]}

    def wait_app(self, app_id: int, timeout: float, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("wait_app", app_id, kwargs))
        if self.signal_in_wait is not None:
            os.kill(os.getpid(), self.signal_in_wait)
            time.sleep(5)  # interrupted long before
            pytest.fail("the signal did not interrupt the wait")
        return {"app_id": app_id, "results": [], "finished": 1.0, "size": 1}

    def cancel(self, app_id: int) -> dict[str, Any]:
        self.calls.append(("cancel", app_id, {}))
        if app_id == 404:
            raise ApiError(404, "no app 404 (never submitted, or reset)")
        return {"app_id": app_id, "cancelled": app_id != 8, "status": 0}

    def close(self) -> None:
        self.calls.append(("close", None, {}))

    def follow_output(self, app_id: int, start: int = 0) -> NoOutput:
        return NoOutput()


class NoOutput:
    """An output stream that ends at once (the results hold everything)."""

    def events(self) -> Iterator[Any]:
        return iter(())

    def close(self) -> None:
        pass


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeClient]]:
    FakeClient.calls = []
    FakeClient.signal_in_wait = None
    monkeypatch.setattr("faabric.run.PlannerClient", FakeClient)
    monkeypatch.setattr("faabric.planner.client.PlannerClient", FakeClient)
    monkeypatch.setattr("faabric.run.load_program", lambda *args, **kwargs: b"\0asm")
    yield FakeClient


def names(calls: list[tuple[str, Any, dict[str, Any]]]) -> list[str]:
    return [name for name, _, _ in calls]


def test_an_attached_run_binds_its_app_to_its_connection(client: type[FakeClient]) -> None:
    assert run_program(RunConfig(planner=PLANNER), "app.wasm", [], token="t" * 16) == 0
    assert [(name, kw) for name, _, kw in client.calls if name != "close"] == [
        ("submit", {"cancel_on_disconnect": True}),
        ("wait_app", {"cancel_on_disconnect": True}),
    ]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_app_in_one_line(
    client: type[FakeClient], capsys: pytest.CaptureFixture[str], signum: int, status: int
) -> None:
    client.signal_in_wait = signum
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    assert run_program(RunConfig(planner=PLANNER), "app.wasm", [], token="t" * 16) == status
    assert names(client.calls)[:3] == ["submit", "wait_app", "cancel"]
    assert capsys.readouterr().err == "faabric: cancelled app 7\n"
    assert {sig: signal.getsignal(sig) for sig in before} == before  # handlers restored


def test_detach_prints_the_id_and_does_not_wait(
    client: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    config = RunConfig(planner=PLANNER)
    assert run_program(config, "app.wasm", [], token="t" * 16, detach=True) == 0
    assert [(name, kw) for name, _, kw in client.calls if name != "close"] == [
        ("submit", {"cancel_on_disconnect": False})]
    assert capsys.readouterr().out == "7\n"


def test_detach_needs_a_planner(client: type[FakeClient]) -> None:
    with pytest.raises(ConfigError, match="--detach needs --planner"):
        run_program(RunConfig(), "app.wasm", [], token="t" * 16, detach=True)
    assert client.calls == []


def test_truncated_output_is_said_once_on_stderr_and_not_in_stdout(
    capsys: pytest.CaptureFixture[str]
) -> None:
    results = [{"index": i, "stdout": b"x", "stderr": b"", "status": 0, "truncated": i != 1,
                "finished": 1.0, "host": "h", "outcome": {"message": "exited with 0"}}
               for i in range(4)]
    doc = {"app_id": 3, "size": 4, "finished": 2.0, "results": results}
    assert report(doc, 10.0) == 0
    out, err = capsys.readouterr()
    assert out == "xxxx"
    assert err.splitlines() == [
        "faabric: output truncated: granules 0,2-3 wrote more than the workers' output limit "
        "(output_limit) to stdout or stderr; the rest was dropped"]


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAABRIC_TOKEN", "t" * 32)
    for name in ("FAABRIC_CONFIG", "FAABRIC_PLANNER", "FAABRIC_OUTPUT_LIMIT"):
        monkeypatch.delenv(name, raising=False)


def test_cancel_command_says_what_happened_to_each_app(
    client: type[FakeClient], no_config: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["cancel", "7", "404", "8"]) == 1
    assert [(name, arg) for name, arg, _ in client.calls if name == "cancel"] == [
        ("cancel", 7), ("cancel", 404), ("cancel", 8)]
    assert capsys.readouterr().err.splitlines() == [
        "faabric: cancelled app 7",
        "faabric: no app 404 (never submitted, or reset)",
        "faabric: app 8 had finished already (status 0)",
    ]


def test_cancel_command_refuses_what_is_not_an_app_id(
    no_config: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["cancel", "seven"])
    assert info.value.code == 2
    assert "an app id is a positive integer" in capsys.readouterr().err


def test_output_limit_is_for_the_embedded_cluster(
    no_config: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--planner", PLANNER, "--output-limit", "10", "app.c"]) == 2
    assert "--output-limit sets the embedded cluster's workers" in capsys.readouterr().err
