"""A real Worker asks a real planner for more slots for a running app, gives them back, and
reports a team it keeps on itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from planner_fakes import TOKEN

from faabric.config import PlannerConfig
from faabric.messages.control import ScaleGranted, ScaleRefused
from faabric.messages.types import Batch, Exited, GranuleResult
from faabric.planner.client import PlannerClient
from faabric.runtime import RunningPlanner
from faabric.worker.service import PlannerAddress, Worker

TIMEOUT = 5.0


class HeldRunner:
    """Runs every granule until the test lets it go."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def run(self, batch: Batch, index: int) -> GranuleResult:
        self.started.set()
        self.release.wait(TIMEOUT)
        return GranuleResult(batch.app_id, index, "w", Exited(0))

    def stop(self, app_id: int, reason: str) -> None:
        self.release.set()


@pytest.fixture
def cluster() -> Iterator[tuple[RunningPlanner, Worker, HeldRunner]]:
    planner = RunningPlanner(PlannerConfig(host="127.0.0.1", port=0, control_port=0),
                             token=TOKEN).start()
    runner = HeldRunner()
    worker = Worker(
        name="w", slots=3, runner=runner, reconnect_for=1.0, token=TOKEN,
        locate_planner=lambda: PlannerAddress("127.0.0.1", planner.control.port),
    )
    thread = threading.Thread(target=worker.serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not planner.service.hosts() and time.monotonic() < deadline:
        time.sleep(0.01)  # the worker registers on its own thread
    yield planner, worker, runner
    runner.release.set()
    worker.stop()
    planner.close()
    thread.join(TIMEOUT)


def test_a_running_app_grows_within_free_slots_then_releases(
    cluster: tuple[RunningPlanner, Worker, HeldRunner],
) -> None:
    planner, worker, runner = cluster
    client = PlannerClient(planner.url, token=TOKEN)
    digest = client.upload_module(b"\0asm\1\0\0\0")
    app_id = client.submit({"module": digest, "size": 1})["app_id"]
    assert runner.started.wait(TIMEOUT)

    granted = worker.scaling.request(app_id, 2, timeout=TIMEOUT)
    assert isinstance(granted, ScaleGranted)
    assert granted.placement == (("w", 2),)

    refused = worker.scaling.request(app_id, 1, timeout=TIMEOUT)
    assert isinstance(refused, ScaleRefused) and refused.free == 0

    worker.scaling.release(app_id, 2)
    again = worker.scaling.request(app_id, 1, timeout=TIMEOUT)
    assert isinstance(again, ScaleGranted)
    client.close()


def test_a_request_for_an_unknown_app_is_refused(
    cluster: tuple[RunningPlanner, Worker, HeldRunner],
) -> None:
    _, worker, _ = cluster
    answer = worker.scaling.request(999, 1, timeout=TIMEOUT)
    assert isinstance(answer, ScaleRefused)


def test_a_team_kept_here_is_an_event_of_the_app(
    cluster: tuple[RunningPlanner, Worker, HeldRunner],
) -> None:
    planner, worker, runner = cluster
    client = PlannerClient(planner.url, token=TOKEN)
    digest = client.upload_module(b"\0asm\1\0\0\0")
    app_id = client.submit({"module": digest, "size": 1})["app_id"]
    assert runner.started.wait(TIMEOUT)

    worker.scaling.kept_local(app_id, 0, 6, "across 2 hosts 4.0 s, on 1 host 2.5 s")
    # The planner reads one worker's messages in order: once this is answered, it is recorded.
    assert isinstance(worker.scaling.request(app_id, 1, timeout=TIMEOUT), ScaleGranted)
    (event,) = client.app(app_id)["events"]
    assert (event["kind"], event["threads"], event["ranks"], event["hosts"]) == (
        "kept-local", 6, [0], ["w"])
    assert event["detail"] == ("kept-local: granule 0 on w runs its 6-thread team here: "
                               "across 2 hosts 4.0 s, on 1 host 2.5 s")
    client.close()
