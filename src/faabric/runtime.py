"""The composition root: the one place where planners, workers and clusters are wired.

Everything else receives its collaborators as arguments; only here are configs turned into
engines, caches, sockets, threads and processes. `EmbeddedCluster` starts a planner in this
process and worker processes beside it, for `faabric run` and `faabric cluster up`. The
cluster token arrives here as an argument (the CLI reads it) and is handed to every server
and client built; worker processes started here get it in their environment.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from prometheus_client import CollectorRegistry, ProcessCollector

from faabric.config import NO_JOURNAL, PlannerConfig, WorkerConfig
from faabric.errors import FaabricError
from faabric.granule import GranuleRunner
from faabric.granule.streaming import OutputStreamer, StreamLimits
from faabric.granule.team_slots import ElasticLink, TeamSlots
from faabric.mpi.early import EarlyLimits
from faabric.mpi.network import DataLimits, DataPlane
from faabric.mpi.worlds import Worlds
from faabric.planner.client import PlannerClient
from faabric.planner.control import ControlServer
from faabric.planner.http import PlannerHttpServer
from faabric.planner.http_limits import HttpLimits
from faabric.planner.journal import Journal
from faabric.planner.metrics import PlannerCollector, PlannerMetrics
from faabric.planner.service import PlannerService
from faabric.scheduling import get_policy
from faabric.threads import ThreadPolicy, thread_functions
from faabric.threads.service import TeamService
from faabric.threads.team_functions import TeamFunctions
from faabric.threads.wire import TeamWire
from faabric.transport.auth import TOKEN_ENV
from faabric.transport.framing import listen
from faabric.wasm import ModuleCache, WasmEngine
from faabric.wasm.host import HostFunction
from faabric.worker.counters import WorkerMeter
from faabric.worker.scaling import ScaleClient
from faabric.worker.service import PlannerAddress, Worker

log = logging.getLogger(__name__)

CLUSTER_START_TIMEOUT = 60.0


class RunningPlanner:
    """A planner serving HTTP and control connections on background threads; both refuse
    whoever does not know `token`."""

    def __init__(self, config: PlannerConfig, *, token: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.journal = None if config.journal in ("", NO_JOURNAL) else Journal(
            Path(config.journal).expanduser(), config.retain_finished)
        self.registry = CollectorRegistry()  # this planner's metrics, served at GET /metrics
        metrics = PlannerMetrics(self.registry)
        self.service = PlannerService(
            observer=metrics,
            clock=clock,
            keepalive_timeout=config.keepalive_timeout,
            retain_finished=config.retain_finished,
            max_module_bytes=config.max_module_bytes,
            migration_offer_timeout=config.migration_offer_timeout,
            policy=get_policy(config.policy),
            journal=self.journal,
        )
        self.registry.register(PlannerCollector(self.service.gauges, metrics))
        ProcessCollector(registry=self.registry)
        self.control = ControlServer(listen(config.host, config.control_port), self.service,
                                     token=token, max_frame=config.control_max_frame)
        try:
            self.http = PlannerHttpServer(
                (config.host, config.port),
                self.service,
                token=token,
                control_port=lambda: self.control.port,
                max_request_bytes=config.max_request_bytes,
                metrics=self.registry,
                limits=HttpLimits(idle_timeout=config.http_idle_timeout,
                                  header_timeout=config.http_header_timeout),
            )
        except OSError as exc:
            self.control.close()
            if self.journal is not None:
                self.journal.close()
            raise FaabricError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
            ) from exc
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.http.serve_forever, name="planner-http", daemon=True),
            threading.Thread(target=self._tick_loop, name="planner-ticker", daemon=True),
        ]

    @property
    def url(self) -> str:
        """Where clients reach the HTTP API."""
        host = self.config.host if self.config.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{self.http.port}"

    def start(self) -> RunningPlanner:
        """Start serving; returns self."""
        self.control.start()
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop worker connections."""
        self._stop.set()
        self.http.shutdown()
        self.http.server_close()
        self.control.close()
        if self.journal is not None:
            self.journal.close()

    def _tick_loop(self) -> None:
        period = self.config.keepalive_timeout / 4
        while not self._stop.wait(period):
            self.service.tick()


def build_worker(config: WorkerConfig, token: str) -> tuple[Worker, Callable[[], None]]:
    """A worker ready to `serve()` in the cluster of `token`, and a function releasing its
    engine afterwards."""
    client = PlannerClient(config.planner, token=token)
    try:
        data_plane = _open_data_plane(client.host, token, DataLimits(
            max_frame=config.data_max_frame, stall_timeout=config.data_stall_timeout))
    except FaabricError:
        client.close()
        raise
    engine = WasmEngine()
    modules = ModuleCache(engine, config.cache_dir, fetch=client.fetch_module)
    name = config.host_name()
    worlds = Worlds(name, data_plane, planner=_WorkerLink(lambda: worker),
                    early=EarlyLimits(config.early_bytes, config.early_seconds))
    wire = TeamWire(data_plane)
    teams = TeamService(name, wire)
    data_plane.start(worlds, wire.router(teams.received), lambda payload: worker.take_rank(payload))
    # The worker is made below; its scale client is used only once it serves granules.
    team_slots = _team_slots(lambda: worker.scaling, config.slots, name, teams)
    functions = _thread_functions(config.slots, team_slots, teams)
    streamer = OutputStreamer(lambda chunk: worker.send_output(chunk),
                              StreamLimits(config.output_limit))
    runner = GranuleRunner(engine, modules, host=name, worlds=worlds, team_slots=team_slots,
                           teams=teams, extra_functions=functions,
                           send_rank=data_plane.send_rank, output_limit=config.output_limit,
                           streamer=streamer)
    teams.serve_parts(runner.run_part)
    worker = Worker(
        name=name,
        slots=config.slots,
        runner=runner,
        locate_planner=lambda: PlannerAddress(client.host,
                                              int(client.config()["control_port"])),
        reconnect_for=config.reconnect_for,
        data_address=data_plane.address,
        migrating=worlds,
        courier=data_plane,
        token=token,
        max_frame=config.control_max_frame,
        counters=WorkerMeter(worlds, wire, data_plane).read,
    )

    def release() -> None:
        streamer.close()
        data_plane.close()
        client.close()
        engine.close()

    return worker, release


def _thread_functions(slots: int, team_slots: TeamSlots,
                      teams: TeamService) -> tuple[HostFunction, ...]:
    """The host functions of guests' threads and OpenMP teams."""
    return (
        *thread_functions(ThreadPolicy(default_team=slots), team_slots),
        *TeamFunctions(teams, team_slots.plan, team_slots, team_slots).functions(),
    )


def _team_slots(scaling: Callable[[], ScaleClient], slots: int, name: str,
                teams: TeamService) -> TeamSlots:
    """The slots of this worker's granules' threads, asked of the planner through the
    worker's scale client (`scaling()`), elastic forks and team reports included."""
    elastic = ElasticLink(
        lambda app_id, count: scaling().request(app_id, count, local=True, up_to=True),
        lambda app_id, index, threads: scaling().resized(app_id, index, threads),
        lambda app_id, index, threads, detail: scaling().kept_local(
            app_id, index, threads, detail),
    )
    return TeamSlots(
        lambda app_id, count, local: scaling().request(app_id, count, local=local),
        lambda app_id, count: scaling().release(app_id, count),
        team_size=slots, host=name, learn=teams.learn, elastic=elastic,
    )


@dataclass(frozen=True, slots=True)
class _WorkerLink:
    """The MPI worlds' link to the planner: through the worker, made after them."""

    worker: Callable[[], Worker]

    def points(self, app_id: int) -> None:
        self.worker().points(app_id)

    def claim(self, app_id: int, epoch: int) -> None:
        self.worker().claim(app_id, epoch)


def _open_data_plane(planner_host: str, token: str, limits: DataLimits) -> DataPlane:
    """The worker's data-plane listener, on the address other workers route to."""
    address = _local_address_towards(planner_host)
    try:
        return DataPlane(address, token, limits)
    except OSError as exc:
        raise FaabricError(f"cannot listen on {address}: {exc.strerror or exc}") from exc


def _local_address_towards(host: str) -> str:
    """This machine's IP address on the route to `host` (where other workers can reach us)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((socket.gethostbyname(host), 9))  # no packet is sent
            address: str = probe.getsockname()[0]
            return address
    except OSError as exc:
        raise FaabricError(f"cannot find a local address towards {host}: {exc}") from exc


class EmbeddedCluster:
    """A planner in this process plus `hosts` worker processes with `slots` slots each, all
    sharing `token` (clients of the cluster need it too: `self.token`). The workers run in
    their own process group: a Ctrl-C in the terminal reaches this process alone, which
    stops them (`close`) once it has done what the signal asks."""

    def __init__(
        self,
        *,
        hosts: int,
        slots: int,
        token: str,
        planner: PlannerConfig | None = None,
        worker_env: dict[str, str] | None = None,
        output_limit: int | None = None,
    ) -> None:
        if hosts < 1 or slots < 1:
            raise FaabricError("a cluster needs at least one host with at least one slot")
        self.hosts = hosts
        self.slots = slots
        self.token = token
        # The cluster's workers end with it, so its journal does too: ids start at 1.
        self._state = tempfile.TemporaryDirectory(prefix="faabric-cluster-")
        config = dataclasses.replace(planner or PlannerConfig(port=0, control_port=0),
                                     journal=str(Path(self._state.name) / "planner.db"))
        self.planner = RunningPlanner(config, token=token)
        self._worker_env = worker_env
        self._output_limit = output_limit  # None: the workers' own configuration
        self.workers: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The embedded planner's URL."""
        return self.planner.url

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the planner and the workers; returns once every worker has registered."""
        self.planner.start()
        try:
            for _ in range(self.hosts):
                self.workers.append(self._spawn_worker())
            self._await_workers()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the workers (SIGTERM, then SIGKILL) and the planner."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers.clear()
        self.planner.close()
        self._state.cleanup()

    def _spawn_worker(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ if self._worker_env is None else self._worker_env)
        env[TOKEN_ENV] = self.token  # not on the command line, where anyone could read it
        command = [sys.executable, "-m", "faabric", "worker", "--planner", self.url,
                   "--slots", str(self.slots)]
        if self._output_limit is not None:
            command += ["--output-limit", str(self._output_limit)]
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, process_group=0)

    def _await_workers(self) -> None:
        deadline = time.monotonic() + CLUSTER_START_TIMEOUT
        while len(self.planner.service.hosts()) < self.hosts:
            for proc in self.workers:
                if proc.poll() is not None:
                    raise FaabricError(
                        f"a worker exited during start-up (status {proc.returncode})"
                    )
            if time.monotonic() > deadline:
                raise FaabricError(
                    f"only {len(self.planner.service.hosts())} of {self.hosts} workers "
                    f"registered within {CLUSTER_START_TIMEOUT:g} s"
                )
            time.sleep(0.02)
