"""Typed, frozen configuration for every faabric command, read once at the edge.

Each option has one definition here (a dataclass field with a default). Values come, highest
priority first, from the command line, the environment (`FAABRIC_<FIELD>`, e.g.
`FAABRIC_SLOTS=4`), a TOML file (`FAABRIC_CONFIG`, else `./faabric.toml`; one table per
section, e.g. `[worker]`), then the default. Nothing below `runtime.py` reads the environment.
The cluster token is no option: it is FAABRIC_TOKEN or the contents of `token_file`, read by
the CLI (`faabric.transport.auth`) and passed down explicitly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from faabric.errors import ConfigError

DEFAULT_PLANNER_URL = "http://127.0.0.1:8080"


def default_cache_dir() -> Path:
    """Where compiled modules are cached: `$XDG_CACHE_HOME/faabric` or `~/.cache/faabric`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faabric"


def default_token_path() -> Path:
    """Where the cluster token is kept: `$XDG_CONFIG_HOME/faabric/token` or
    `~/.config/faabric/token` (FAABRIC_TOKEN, when set, is used instead of any file)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "faabric" / "token"


def default_journal_path() -> str:
    """Where the planner keeps its journal: `$XDG_STATE_HOME/faabric/planner.db` or
    `~/.local/state/faabric/planner.db`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "faabric" / "planner.db")


NO_JOURNAL = "none"  # the value of `journal` that keeps none


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Options of `faabric planner`."""

    host: str = "127.0.0.1"
    port: int = 8080
    control_port: int = 8081
    keepalive_timeout: float = 5.0
    max_request_bytes: int = 64 << 20
    max_module_bytes: int = 512 << 20
    http_idle_timeout: float = 30.0  # seconds an HTTP connection may stay silent
    http_header_timeout: float = 10.0  # seconds for a request's line and headers, in all
    control_max_frame: int = 128 << 20  # bytes of one frame on the control port
    retain_finished: int = 10_000
    migration_offer_timeout: float = 30.0  # seconds an unclaimed migration offer is kept
    policy: str = "bin-pack"  # the scheduling policy of apps that do not name their own
    token_file: Path = field(default_factory=default_token_path)  # created if missing
    journal: str = field(default_factory=default_journal_path)  # a file, or "none"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Options of `faabric worker`."""

    planner: str = DEFAULT_PLANNER_URL
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    name: str = ""  # empty: `<host name>-<pid>`, unique among workers of one machine
    cache_dir: Path = field(default_factory=default_cache_dir)
    reconnect_for: float = 30.0
    output_limit: int = 16 << 20  # bytes of stdout, and of stderr, kept per granule
    token_file: Path = field(default_factory=default_token_path)
    control_max_frame: int = 128 << 20  # bytes of one frame from the planner
    data_max_frame: int = (4 << 30) + (64 << 20)  # bytes of one frame from another worker
    data_stall_timeout: float = 60.0  # seconds a data-plane frame may pause half-way
    early_bytes: int = 256 << 20  # bytes kept for apps with no rank here yet, in all...
    early_seconds: float = 120.0  # ... each for at most this long

    def host_name(self) -> str:
        """The name to register under."""
        return self.name or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Options of `faabric run` (and the embedded cluster it may start)."""

    n: int = 1
    hosts: int = 1
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    planner: str = ""  # empty: start an embedded cluster
    timeout: float = 300.0
    memory_limit: int = 1 << 30
    migrate_every: int = 1  # MPI apps may move at every k-th world barrier; 0: never
    policy: str = ""  # the app's scheduling policy; empty: the cluster's
    elastic: bool = False  # OpenMP teams grow to the worker's free slots at each fork
    output_limit: int = 16 << 20  # the embedded cluster's workers' (see WorkerConfig)
    cache_dir: Path = field(default_factory=default_cache_dir)
    token_file: Path = field(default_factory=default_token_path)  # with `planner` only


T = TypeVar("T")


def load(
    cls: type[T],
    section: str,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Build a config of type `cls` from overrides, environment, TOML file and defaults.

    Args:
        cls: one of the config dataclasses above.
        section: the TOML table to read (`planner`, `worker`, `run`).
        overrides: values given on the command line; None values are ignored.
        environ: the environment to read (defaults to os.environ).
    """
    env = os.environ if environ is None else environ
    table = _toml_table(env, section)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        raw: Any = None
        if overrides is not None and overrides.get(f.name) is not None:
            raw = overrides[f.name]
        elif f"FAABRIC_{f.name.upper()}" in env:
            raw = env[f"FAABRIC_{f.name.upper()}"]
        elif f.name in table:
            raw = table[f.name]
        if raw is not None:
            values[f.name] = _coerce(f, raw)
    return cls(**values)


def _toml_table(env: Mapping[str, str], section: str) -> Mapping[str, Any]:
    path = Path(env.get("FAABRIC_CONFIG", "faabric.toml"))
    if not path.is_file():
        if "FAABRIC_CONFIG" in env:
            raise ConfigError(f"config file {path} does not exist")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] in {path} must be a table")
    return table


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _coerce(f: dataclasses.Field[Any], raw: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            return _boolean(raw)
        if isinstance(raw, bool):
            raise ValueError("expected a number, not a boolean")
        if kind == "int":
            if isinstance(raw, float):
                raise ValueError("expected an integer")
            value: Any = int(raw)
            if value < 0:
                raise ValueError("must not be negative")
            return value
        if kind == "float":
            value = float(raw)
            if not 0 < value < math.inf:
                raise ValueError("must be a positive finite number")
            return value
        if kind == "Path":
            return Path(str(raw)).expanduser()
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"bad value {raw!r} for {f.name}: {exc}") from exc
