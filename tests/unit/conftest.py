"""Fixtures for the toolchain, wasm and granule unit tests: guests compiled once per session,
one engine per session, and a module cache backed by an in-memory blob store; and for the
planner tests, a client and fake workers for the module's `planner`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings
from planner_fakes import TIMEOUT as PLANNER_TIMEOUT
from planner_fakes import TOKEN, FakeWorker
from team_harness import team  # noqa: F401  (a fixture of the team tests)

from faabric.messages.control import Registered
from faabric.planner.client import PlannerClient
from faabric.runtime import RunningPlanner
from faabric.toolchain import build
from faabric.wasm import ModuleCache, WasmEngine, module_digest

GUESTS = Path(__file__).resolve().parent.parent / "guests"

# Property tests draw the same examples on every run, so CI is repeatable; set
# FAABRIC_HYPOTHESIS=explore to draw new ones (and look for new failures) locally.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("FAABRIC_HYPOTHESIS", "repeatable"))

# name -> extra flags; every guest here must compile
GUEST_FLAGS: dict[str, tuple[str, ...]] = {
    "hello": (),
    "noop": (),
    "exit_code": (),
    "trap": (),
    "loop": (),
    "echo_input": (),
    "oom": (),
    "unknown_import": (),
    "threads": ("-pthread",),
    "suspend": (),
    "library": ("-nostartfiles", "-Wl,--no-entry", "-Wl,--export=add"),
}


@dataclass
class BlobStore:
    """Module bytes by digest, standing in for the planner's module store; counts fetches."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    fetches: int = 0

    def put(self, data: bytes) -> str:
        digest = module_digest(data)
        self.blobs[digest] = data
        return digest

    def fetch(self, digest: str) -> bytes:
        self.fetches += 1
        return self.blobs[digest]


@pytest.fixture(scope="session", autouse=True)
def _session_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Planners made with the default configuration journal under XDG_STATE_HOME: never the
    user's home, nor a directory another test session uses."""
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's planners journal into a directory of its own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def guest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guest-builds")


@pytest.fixture(scope="session")
def guests(guest_dir: Path) -> dict[str, bytes]:
    """Every guest of GUEST_FLAGS, compiled once: name -> wasm bytes."""
    return {
        name: build(GUESTS / f"{name}.c", flags=flags, cache_dir=guest_dir).read_bytes()
        for name, flags in GUEST_FLAGS.items()
    }


@pytest.fixture(scope="session")
def engine() -> Iterator[WasmEngine]:
    with WasmEngine() as wasm_engine:
        yield wasm_engine


@pytest.fixture
def blobs(guests: dict[str, bytes]) -> BlobStore:
    store = BlobStore()
    for data in guests.values():
        store.put(data)
    return store


@pytest.fixture
def modules(engine: WasmEngine, blobs: BlobStore, tmp_path: Path) -> ModuleCache:
    return ModuleCache(engine, tmp_path / "native", blobs.fetch)


# -- planner tests (test_http_api, test_planner_batch_scale): each module defines `planner` ------


@pytest.fixture
def client(planner: RunningPlanner) -> Iterator[PlannerClient]:
    planner_client = PlannerClient(planner.url, token=TOKEN, timeout=PLANNER_TIMEOUT)
    yield planner_client
    planner_client.close()


@pytest.fixture
def workers(planner: RunningPlanner) -> Iterator[Callable[[str, int], FakeWorker]]:
    started: list[FakeWorker] = []

    def make(name: str, slots: int) -> FakeWorker:
        worker = FakeWorker(planner, name, slots)
        assert isinstance(worker.first, Registered), worker.first
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.close()


@pytest.fixture(autouse=True)
def cluster_token(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every command run here uses the planners' test token, and no test reads or writes the
    real token file."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("FAABRIC_TOKEN_FILE", raising=False)
    monkeypatch.setenv("FAABRIC_TOKEN", TOKEN)
    return TOKEN
