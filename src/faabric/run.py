"""`faabric run`: build the program if needed, submit it as an app, print what it printed.

Without a planner URL an embedded cluster is started for the run and torn down after it; the
caller gives the cluster token either way (for an embedded cluster, a fresh one).
Granules' stdout and stderr are printed as they are produced (`run_output`), each granule's
in order; the exit status is 0
only if every granule exited 0, otherwise one line on stderr says which granule failed how
(and one more if any granule's output went over the workers' output limit).
The app lives as long as the run: SIGINT or SIGTERM cancels it (one line on stderr, exit
130 or 143), and so does the planner if the run's connection closes (`cancel_on_disconnect`)
— unless it is detached, when the run prints the app id and returns at once.
The guest's environment is built by `guest_environment` from the launching shell's `OMP_*`
variables, `-x` and `--env` (in rising precedence).
This module only orchestrates; building, scheduling and running live elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from faabric.config import RunConfig
from faabric.errors import ApiError, ConfigError, FaabricError
from faabric.planner.client import PlannerClient, id_ranges
from faabric.progress import QueueNotice, Spinner
from faabric.run_output import Follow, OutputPrinter
from faabric.scheduling import get_policy

log = logging.getLogger(__name__)

CLIENT_MARGIN = 30.0
CANCEL_TIMEOUT = 10.0  # seconds to cancel the app once interrupted
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while the run was going on (a BaseException, like
    KeyboardInterrupt, so that no handler of errors takes it for one)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
SOURCE_SUFFIXES = {".c": False, ".cc": True, ".cpp": True, ".cxx": True, ".C": True}
INHERITED_PREFIX = "OMP_"


def run_program(
    config: RunConfig,
    program: str,
    args: Sequence[str],
    *,
    token: str,
    env: Mapping[str, str] | None = None,
    input_file: str | None = None,
    verbose: bool = False,
    user: str = "",
    detach: bool = False,
    tag_output: bool = False,
) -> int:
    """Run `program` as `config.n` granules for `user` (who submits it, for the compact
    policy) with the environment `env` (see `guest_environment`), on the planner of
    `config.planner` or an embedded cluster, either knowing `token`; returns the exit status
    for the shell. With `detach`, only submit it (to a planner) and print its id."""
    if config.n < 1 or config.hosts < 1 or config.slots < 1:
        raise ConfigError("-n, --hosts and --slots must be at least 1")
    if detach and not config.planner:
        raise ConfigError("--detach needs --planner: an embedded cluster ends with the run")
    if config.policy:
        get_policy(config.policy)  # an unknown name is a one-line error before any build
    try:
        with _signals_interrupt():
            wasm = load_program(Path(program), config.cache_dir, verbose=verbose)
            app = _app_document(config, program, args, env, input_file, user)
            with _planner(config, token, verbose) as client:
                app["module"] = client.upload_module(wasm)
                return _submit(client, app, config, detach, token,
                               _Printing(tag_output, verbose))
    except Interrupted as stop:  # before the app was submitted
        print("faabric: interrupted", file=sys.stderr)
        return 128 + stop.signum


def _app_document(config: RunConfig, program: str, args: Sequence[str],
                  env: Mapping[str, str] | None, input_file: str | None,
                  user: str) -> dict[str, Any]:
    return {
        "module": "",
        "size": config.n,
        "program": Path(program).name,
        "args": list(args),
        "env": dict(env or {}),
        "input": _read_input(input_file),
        "timeout": config.timeout,
        "memory_limit": config.memory_limit,
        "migrate_every": config.migrate_every,
        "elastic": config.elastic,
        "user": user,
        "policy": config.policy,
    }


@dataclass(frozen=True, slots=True)
class _Printing:
    """How the app's output is printed: lines tagged with app and granule, backtraces."""

    tag: bool
    verbose: bool


def _submit(client: PlannerClient, app: dict[str, Any], config: RunConfig,
            detach: bool, token: str, printing: _Printing) -> int:
    """Submit the app; detached, print its id, else follow its output, wait for it and
    report it. An interruption cancels it."""
    app_id: int | None = None
    waited = config.timeout + CLIENT_MARGIN
    try:
        try:  # attached, the app is bound to this connection: it ends if the run is killed
            doc = client.submit(app, cancel_on_disconnect=not detach)
        except ApiError as exc:
            hint = " (give the embedded cluster more with --slots or --hosts)"
            raise FaabricError(exc.reason + (hint if not config.planner else "")) from exc
        app_id = int(doc["app_id"])
        log.info("submitted app %s", app_id)
        if detach:
            print(app_id, flush=True)
            return 0
        doc, printer = _attend(client, doc, waited, printing, token)
    except Interrupted as stop:
        return _cancel(client, app_id, stop.signum, token)
    return report(doc, waited, printer)


def _attend(client: PlannerClient, doc: dict[str, Any], waited: float, printing: _Printing,
            token: str) -> tuple[dict[str, Any], OutputPrinter]:
    """Print the app's output as it comes until it ends (at most `waited` s), and on a
    terminal where it stands while it is queued; returns its last document."""
    app_id = int(doc["app_id"])
    queued = doc["state"] == "queued" and sys.stderr.isatty()
    watcher = PlannerClient(client.url, token=token, timeout=5) if queued else None
    notice = QueueNotice(app_id, watcher.status if watcher else dict, sys.stderr, show=queued)
    printer = OutputPrinter(app_id, int(doc["size"]), sys.stdout.buffer, sys.stderr.buffer,
                            tag=printing.tag, verbose=printing.verbose,
                            before_output=notice.stop)
    follow = Follow(client.follow_output(app_id), printer)
    try:
        doc = client.wait_app(app_id, waited, cancel_on_disconnect=True)
        notice.stop()
        follow.stop()
    finally:  # at once if interrupted
        notice.stop()
        follow.stop(grace=0)
        if watcher is not None:
            watcher.close()
    if follow.error is not None:
        log.info("the output stream broke: %s; printing the rest from the results",
                 follow.error)
    return doc, printer


def _cancel(client: PlannerClient, app_id: int | None, signum: int, token: str) -> int:
    """The run was interrupted: cancel its app (if it was submitted) on a connection of its
    own, then drop the interrupted one (which would cancel it too, as bound to it); returns
    the exit status of a process ended by `signum`."""
    if app_id is None:
        client.close()  # if the planner took the app, it cancels it as this closes
        print("faabric: interrupted", file=sys.stderr)
        return 128 + signum
    canceller = PlannerClient(client.url, token=token, timeout=CANCEL_TIMEOUT)
    try:
        canceller.cancel(app_id)
    except FaabricError as exc:
        print(f"faabric: interrupted, but app {app_id} may not be cancelled: {exc}",
              file=sys.stderr)
        return 128 + signum
    finally:
        canceller.close()
        client.close()
    print(f"faabric: cancelled app {app_id}", file=sys.stderr)
    return 128 + signum


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise `Interrupted` in the main thread (the first
    one only: the handlers in place before are back once it arrived, so a second signal
    acts as it would have). Elsewhere than in the main thread, signals are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) or signal.SIG_DFL for sig in STOP_SIGNALS}

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise Interrupted(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def load_program(path: Path, cache_dir: Path, *, verbose: bool = False) -> bytes:
    """The wasm bytes of `path`: read a .wasm, or compile a C/C++ source (cached)."""
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    if path.suffix in SOURCE_SUFFIXES:
        from faabric.toolchain import build, default_flags_for

        if verbose:
            print(f"faabric: building {path}", file=sys.stderr)
        with Spinner(f"compiling {path.name}", sys.stderr,
                     show=sys.stderr.isatty() and not verbose):
            built = build(path, flags=default_flags_for(path), cache_dir=cache_dir / "builds")
        return built.read_bytes()
    if path.suffix != ".wasm":
        raise ConfigError(f"{path}: expected a .c, .cpp or .wasm file")
    return path.read_bytes()


def report(doc: dict[str, Any], waited: float, printer: OutputPrinter | None = None) -> int:
    """Print what `printer` has not printed of the app's outputs (without one, all of
    them), then how it ended; returns its exit status."""
    if printer is None:
        printer = OutputPrinter(doc["app_id"], doc["size"], sys.stdout.buffer,
                                sys.stderr.buffer)
    printer.finish(doc["results"])
    truncated = [r["index"] for r in doc["results"] if r.get("truncated")]
    if truncated:
        which = f"granule{'s' if len(truncated) > 1 else ''} {id_ranges(truncated)}"
        print(f"faabric: output truncated: {which} wrote more than the workers' output "
              "limit (output_limit) to stdout or stderr; the rest was dropped",
              file=sys.stderr)
    if doc["finished"] is None:
        print(f"faabric: app {doc['app_id']} did not finish within {waited:g} s",
              file=sys.stderr)
        return 1
    failed = [r for r in doc["results"] if r["status"] != 0]
    if not failed:
        return 0
    # The granule that failed first is usually the cause (e.g. the MPI rank that trapped).
    first = min(failed, key=lambda r: (r["finished"], r["index"]))
    where = f" on {first['host']}" if first["host"] else ""
    prefix = (f"{len(failed)} of {doc['size']} granules failed; first to fail: "
              if len(failed) > 1 else "")
    print(f"faabric: {prefix}app {doc['app_id']} granule {first['index']}{where} "
          f"{first['outcome']['message']}", file=sys.stderr)
    return int(first["status"]) or 1


@contextlib.contextmanager
def _planner(config: RunConfig, token: str, verbose: bool) -> Iterator[PlannerClient]:
    if config.planner:
        client = PlannerClient(config.planner, token=token)
        try:
            yield client
        finally:
            client.close()
        return
    from faabric.runtime import EmbeddedCluster

    if verbose:
        print(f"faabric: starting {config.hosts} worker(s) x {config.slots} slots",
              file=sys.stderr)
    with EmbeddedCluster(hosts=config.hosts, slots=config.slots, token=token,
                         output_limit=config.output_limit) as cluster:
        client = PlannerClient(cluster.url, token=token)
        try:
            yield client
        finally:
            client.close()


def guest_environment(
    shell: Mapping[str, str], forwarded: Sequence[str], explicit: Sequence[str]
) -> dict[str, str]:
    """The environment of every granule: the `OMP_*` variables of `shell` (the launching
    shell's environment), then `forwarded` (`-x NAME` takes NAME from `shell`, `-x NAME=VALUE`
    sets it), then `explicit` (`--env NAME=VALUE`); a later source wins over an earlier one."""
    env = {name: value for name, value in shell.items() if name.startswith(INHERITED_PREFIX)}
    for item in forwarded:
        name, sep, value = item.partition("=")
        if not name:
            raise ConfigError(f"-x expects NAME or NAME=VALUE, got {item!r}")
        if not sep:
            if name not in shell:
                raise ConfigError(f"-x {name}: not set in the environment")
            value = shell[name]
        env[name] = value
    for pair in explicit:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def _read_input(path: str | None) -> bytes:
    if path is None:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read input file {path}: {exc.strerror}") from exc
