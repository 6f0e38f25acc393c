"""The `faabric` command: run, cc/c++, planner, worker, cluster up, status, cancel, evict,
experiment, logs, completion.

Parses arguments, builds configs (command line > environment > TOML > defaults), reads the
cluster token once (`--token-file`, else FAABRIC_TOKEN, else the configured token file),
hands them to `runtime` and prints results. Every FaabricError becomes one line on stderr and
a non-zero exit; tracebacks are for bugs only. Run logic lives in `faabric.run`; nothing here
schedules.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from faabric import __version__
from faabric.commands import add_completion, add_logs, watch_status
from faabric.config import DEFAULT_PLANNER_URL, PlannerConfig, RunConfig, WorkerConfig, load
from faabric.errors import ApiError, ConfigError, FaabricError
from faabric.logs import FORMATS, LOG_FORMAT_ENV, configure, log_format, tag
from faabric.planner.client import PlannerClient

EXIT_USAGE = 2
TOKEN_HELP = ("file holding the cluster token (default: FAABRIC_TOKEN, else "
              "~/.config/faabric/token)")
LOG_FORMAT_HELP = ("log lines on stderr as text (the default) or json (one object per "
                   f"line); default: {LOG_FORMAT_ENV}, else text")
OUTPUT_LIMIT_HELP = ("bytes of stdout, and of stderr, kept per granule (default 16 MiB); "
                     "output past it is dropped and the result says it was truncated")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `faabric` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("cc", "c++"):
        from faabric.toolchain import cc_main

        return _guard(lambda: cc_main(args[1:], cxx=args[0] == "c++"))
    parser = _parser()
    ns = parser.parse_args(args)
    try:
        fmt = log_format(getattr(ns, "log_format", None), os.environ)
    except ConfigError as exc:
        print(f"faabric: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure(logging.DEBUG if getattr(ns, "verbose", False) else logging.WARNING, fmt)
    if not hasattr(ns, "func"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return _guard(lambda: ns.func(ns))


def _guard(action: Callable[[], int]) -> int:
    try:
        return action()
    except FaabricError as exc:
        print(f"faabric: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("faabric: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faabric",
        description="Run MPI and OpenMP programs compiled to WebAssembly across a cluster.",
        epilog="Also: 'faabric cc ARGS...' and 'faabric c++ ARGS...' compile C/C++ to wasm.",
    )
    parser.add_argument("--version", action="version", version=f"faabric {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    _add_run(sub)
    _add_planner(sub)
    _add_worker(sub)
    _add_cluster(sub)
    _add_status(sub)
    _add_cancel(sub)
    _add_evict(sub)
    _add_experiment(sub)
    add_logs(sub, _client, _planner_options)
    add_completion(sub, _parser)
    sub.add_parser("cc", help="compile C to wasm (clang-style arguments)")
    sub.add_parser("c++", help="compile C++ to wasm (clang-style arguments)")
    return parser


def _add_experiment(sub: Any) -> None:
    from faabric.experiments.command import add_parser

    add_parser(sub)


def _add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="compile if needed and run a program as N granules",
        description="Compile if needed and run a program as N granules. Every granule's "
        "environment holds this shell's OMP_* variables, the variables given with -x and "
        "those given with --env; --env wins over -x, which wins over the inherited OMP_*. "
        "The app lives as long as the run: Ctrl-C or SIGTERM cancels it (exit 130 or 143), "
        "as does the run's connection to the planner closing; --detach leaves it running.",
    )
    p.add_argument("-n", type=int, dest="n", help="number of granules (default 1)")
    p.add_argument("--hosts", type=int, help="embedded cluster: worker processes (default 1)")
    p.add_argument("--slots", type=int, help="embedded cluster: slots per worker (default: CPUs)")
    p.add_argument("--planner", help="use a running planner instead of an embedded cluster")
    p.add_argument("--timeout", type=float, help="seconds each granule may run (default 300)")
    p.add_argument("--memory-limit", type=int, dest="memory_limit",
                   help="bytes of memory per granule (default 1 GiB)")
    p.add_argument("--input", dest="input_file", help="file whose bytes granules read as input")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment variable for the guest (repeatable; wins over -x and "
                   "the inherited OMP_* variables)")
    p.add_argument("-x", action="append", default=[], dest="forward", metavar="NAME[=VALUE]",
                   help="pass NAME from this shell to the guest, or set it to VALUE "
                   "(repeatable, as mpirun -x; wins over the inherited OMP_* variables)")
    moves = p.add_mutually_exclusive_group()
    moves.add_argument("--migrate-every", type=int, dest="migrate_every", metavar="K",
                       help="MPI ranks may be moved at every K-th barrier (default 1)")
    moves.add_argument("--no-migrate", action="store_true", dest="no_migrate",
                       help="never move the app's ranks (same as --migrate-every 0)")
    p.add_argument("--elastic", action="store_true", default=None,
                   help="OpenMP regions without num_threads grow to the worker's free slots "
                   "at each fork (docs/openmp.md)")
    p.add_argument("--policy", help="scheduling policy of this app: bin-pack, compact, "
                   "spot or whole-vm (default: the cluster's)")
    p.add_argument("--output-limit", type=int, dest="output_limit", metavar="BYTES",
                   help="embedded cluster: " + OUTPUT_LIMIT_HELP + " (a running cluster's "
                   "workers set theirs: 'faabric worker --output-limit')")
    p.add_argument("--detach", action="store_true",
                   help="with --planner: submit, print the app id and return at once; the "
                   "app runs on ('faabric cancel APP' stops it)")
    p.add_argument("--token-file", dest="token_file",
                   help=TOKEN_HELP + "; with --planner only: an embedded cluster makes its own")
    p.add_argument("--tag-output", action="store_true", dest="tag_output",
                   help="prefix every line the granules print with [APP,INDEX]<stdout>: or "
                   "[APP,INDEX]<stderr>: (as mpirun --tag-output)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log what happens; show a trapped granule's backtrace")
    p.add_argument("program", help="a .c, .cpp or .wasm file")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments after '--' go to the guest")
    p.set_defaults(func=_cmd_run)


def _add_planner(sub: Any) -> None:
    p = sub.add_parser("planner", help="run the planner in the foreground")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP API port (default 8080)")
    p.add_argument("--control-port", type=int, dest="control_port",
                   help="port workers connect to (default 8081)")
    p.add_argument("--keepalive-timeout", type=float, dest="keepalive_timeout",
                   help="seconds without keep-alive before a worker is dropped (default 5)")
    p.add_argument("--policy", help="scheduling policy of apps that name none: bin-pack "
                   "(default), compact, spot or whole-vm")
    p.add_argument("--token-file", dest="token_file", help=TOKEN_HELP + "; created if missing")
    p.add_argument("--journal", help="the file recording apps and results across restarts "
                   "(default ~/.local/state/faabric/planner.db), or 'none'")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    p.add_argument("--log-format", dest="log_format", choices=FORMATS,
                   help=LOG_FORMAT_HELP)
    p.set_defaults(func=_cmd_planner)


def _add_worker(sub: Any) -> None:
    p = sub.add_parser("worker", help="run a worker host in the foreground")
    p.add_argument("--planner", help=f"planner URL (default {DEFAULT_PLANNER_URL})")
    p.add_argument("--slots", type=int, help="granules run at once (default: CPUs)")
    p.add_argument("--name", help="host name to register under (default: <hostname>-<pid>)")
    p.add_argument("--output-limit", type=int, dest="output_limit", metavar="BYTES",
                   help=OUTPUT_LIMIT_HELP)
    p.add_argument("--token-file", dest="token_file", help=TOKEN_HELP)
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    p.add_argument("--log-format", dest="log_format", choices=FORMATS,
                   help=LOG_FORMAT_HELP)
    p.set_defaults(func=_cmd_worker)


def _add_cluster(sub: Any) -> None:
    p = sub.add_parser("cluster", help="local clusters")
    csub = p.add_subparsers(metavar="ACTION")
    up = csub.add_parser("up", help="planner + H workers in the foreground until Ctrl-C")
    up.add_argument("--hosts", type=int, default=1, help="worker processes (default 1)")
    up.add_argument("--slots", type=int, help="slots per worker (default: CPUs)")
    up.add_argument("--host", help="planner address (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="planner HTTP port (default 8080)")
    up.add_argument("--control-port", type=int, dest="control_port",
                    help="planner control port (default 8081)")
    up.add_argument("--policy", help="scheduling policy (default bin-pack)")
    up.add_argument("--token-file", dest="token_file", help=TOKEN_HELP + "; created if missing")
    up.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    up.add_argument("--log-format", dest="log_format", choices=FORMATS,
                    help=LOG_FORMAT_HELP + " (its workers log the same way)")
    up.set_defaults(func=_cmd_cluster_up)


def _add_status(sub: Any) -> None:
    p = sub.add_parser("status", help="hosts and in-flight apps of a planner")
    p.add_argument("--planner", help=f"planner URL (default {DEFAULT_PLANNER_URL})")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.add_argument("-w", "--watch", action="store_true",
                   help="redraw the status every --interval seconds until Ctrl-C")
    p.add_argument("--interval", type=float, default=1.0, metavar="SEC",
                   help="seconds between two frames of --watch (default 1)")
    p.add_argument("--token-file", dest="token_file", help=TOKEN_HELP)
    p.set_defaults(func=_cmd_status)


def _planner_options(p: Any) -> None:
    p.add_argument("--planner", help=f"planner URL (default {DEFAULT_PLANNER_URL})")
    p.add_argument("--token-file", dest="token_file", help=TOKEN_HELP)


def _client(ns: argparse.Namespace) -> PlannerClient:
    config = load(WorkerConfig, "worker", _options(ns, "planner", "token_file"))
    return PlannerClient(config.planner, token=_token(ns, config.token_file), timeout=10)


def _add_cancel(sub: Any) -> None:
    p = sub.add_parser("cancel", help="cancel apps: their granules are stopped and their "
                       "slots freed",
                       description="Cancel apps by id ('faabric status' lists them): each "
                       "finishes at once, its granules cancelled, and its slots go to the "
                       "next apps. An app that has finished already is left as it is.")
    p.add_argument("--planner", help=f"planner URL (default {DEFAULT_PLANNER_URL})")
    p.add_argument("apps", nargs="+", type=_app_id, metavar="APP", help="an app id")
    p.add_argument("--token-file", dest="token_file", help=TOKEN_HELP)
    p.set_defaults(func=_cmd_cancel)


def _app_id(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"an app id is a positive integer, not {text!r}")
    return int(text)


def _add_evict(sub: Any) -> None:
    p = sub.add_parser("evict", help="announce a worker's eviction: it gets no new granules "
                       "and its apps are moved away or frozen")
    p.add_argument("--planner", help=f"planner URL (default {DEFAULT_PLANNER_URL})")
    p.add_argument("host", help="the worker's name, as 'faabric status' shows it")
    p.add_argument("--token-file", dest="token_file", help=TOKEN_HELP)
    p.set_defaults(func=_cmd_evict)


# -- commands -----------------------------------------------------------------------------------


def _cmd_run(ns: argparse.Namespace) -> int:
    from faabric.run import guest_environment, run_program

    try:
        env = guest_environment(os.environ, ns.forward, ns.env)
    except ConfigError as exc:  # a usage error of `faabric run` itself
        print(f"faabric run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = list(ns.args)
    if args and args[0] == "--":
        args = args[1:]
    options = _options(ns, "n", "hosts", "slots", "planner", "timeout", "memory_limit",
                       "migrate_every", "elastic", "policy", "token_file", "output_limit")
    if ns.no_migrate:
        options["migrate_every"] = 0
    config = load(RunConfig, "run", options)
    if config.planner and ns.output_limit is not None:
        print("faabric run: --output-limit sets the embedded cluster's workers; those of a "
              "running cluster take 'faabric worker --output-limit'", file=sys.stderr)
        return EXIT_USAGE
    if config.planner:
        token = _token(ns, config.token_file)
    else:  # the embedded cluster is this run's alone: a token of its own
        from faabric.transport.auth import new_token

        token = new_token()
    return run_program(config, ns.program, args, token=token, env=env,
                       input_file=ns.input_file, verbose=ns.verbose,
                       user=os.environ.get("USER", ""), detach=ns.detach,
                       tag_output=ns.tag_output)


def _cmd_planner(ns: argparse.Namespace) -> int:
    from faabric.runtime import RunningPlanner

    config = load(PlannerConfig, "planner", _options(
        ns, "host", "port", "control_port", "keepalive_timeout", "policy", "token_file",
        "journal"))
    token, created = _token_made(ns, config.token_file)
    planner = RunningPlanner(config, token=token).start()
    print(f"faabric planner listening on {planner.url} (workers: port "
          f"{planner.control.port})", file=sys.stderr, flush=True)
    _announce(config.token_file, created)
    _wait_for_signal()
    planner.close()
    return 0


def _cmd_worker(ns: argparse.Namespace) -> int:
    from faabric.runtime import build_worker

    config = load(WorkerConfig, "worker", _options(ns, "planner", "slots", "name", "token_file",
                                                   "output_limit"))
    tag(host=config.host_name())  # on every line the worker logs (JSON lines show it)
    worker, release = build_worker(config, _token(ns, config.token_file))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop("stopped by a signal"))
    try:
        worker.serve()
    finally:
        worker.stop()
        release()
    return 0


def _cmd_cluster_up(ns: argparse.Namespace) -> int:
    from faabric.runtime import EmbeddedCluster

    planner = load(PlannerConfig, "planner",
                   _options(ns, "host", "port", "control_port", "policy", "token_file"))
    slots = load(WorkerConfig, "worker", _options(ns, "slots")).slots
    token, created = _token_made(ns, planner.token_file)
    env = {**os.environ, LOG_FORMAT_ENV: log_format(ns.log_format, os.environ)}
    with EmbeddedCluster(hosts=ns.hosts, slots=slots, planner=planner,
                         token=token, worker_env=env) as cluster:
        print(f"faabric cluster up: planner {cluster.url}, {ns.hosts} worker(s) x {slots} "
              "slots; Ctrl-C to stop", file=sys.stderr, flush=True)
        _announce(planner.token_file, created)
        _wait_for_signal()
    return 0


def _cmd_status(ns: argparse.Namespace) -> int:
    from faabric.planner.client import PlannerClient

    config = load(WorkerConfig, "worker", _options(ns, "planner", "token_file"))
    client = PlannerClient(config.planner, token=_token(ns, config.token_file), timeout=10)
    if ns.watch:
        show = (lambda s: json.dumps(s, indent=2)) if ns.json else format_status
        return watch_status(client, show, max(0.1, ns.interval))
    status = client.status()
    if ns.json:
        print(json.dumps(status, indent=2))
        return 0
    print(format_status(status))
    return 0


def _cmd_evict(ns: argparse.Namespace) -> int:
    from faabric.planner.client import PlannerClient

    config = load(WorkerConfig, "worker", _options(ns, "planner", "token_file"))
    client = PlannerClient(config.planner, token=_token(ns, config.token_file), timeout=10)
    try:
        client.evict(ns.host)
    finally:
        client.close()
    print(f"faabric: worker {ns.host} is being evicted: it gets no new granules; its apps "
          "move away or freeze ('faabric status' shows them)", file=sys.stderr)
    return 0


def _cmd_cancel(ns: argparse.Namespace) -> int:
    from faabric.planner.client import PlannerClient

    config = load(WorkerConfig, "worker", _options(ns, "planner", "token_file"))
    client = PlannerClient(config.planner, token=_token(ns, config.token_file), timeout=10)
    status = 0
    try:
        for app_id in ns.apps:
            try:
                doc = client.cancel(app_id)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                print(f"faabric: {exc.reason}", file=sys.stderr)
                status = 1
                continue
            done = (f"cancelled app {app_id}" if doc["cancelled"] else
                    f"app {app_id} had finished already (status {doc['status']})")
            print(f"faabric: {done}", file=sys.stderr)
    finally:
        client.close()
    return status


def format_status(status: dict[str, Any]) -> str:
    """The human-readable status: `N hosts`, a line per host (`evicting` if announced for
    eviction), then in-flight apps (ranks per host, the worker keeping a frozen app, and for
    running apps how often the planner moved them)."""
    hosts = status["hosts"]
    lines = [f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}"]
    lines += [f"  {h['name']}  {h['used']}/{h['slots']} slots used"
              + ("  evicting" if h.get("evicting") else "") for h in hosts]
    apps = status["apps"]
    lines.append(f"{len(apps)} app{'s' if len(apps) != 1 else ''} in flight")
    for app in apps:
        where: dict[str, list[int]] = {}
        for p in app["placement"]:
            where.setdefault(p["host"], []).append(p["index"])
        spread = ", ".join(f"{h}: {_ranges(ix)}" for h, ix in sorted(where.items()))
        if app["state"] == "frozen":  # every rank is kept on one worker, not running
            spread = f"kept on {', '.join(sorted(where))}"
        scaled = ", ".join(f"{s['host']}: +{s['slots']}" for s in app.get("scaled", []))
        moved = app.get("migrations", 0)
        moves = f"  moved {moved} time{'s' if moved != 1 else ''}"
        lines.append(f"  app {app['app_id']}  {app['program']}  {app['state']}  "
                     f"{app['done']}/{app['size']} done" + (f"  [{spread}]" if spread else "")
                     + (f"  scaled [{scaled}]" if scaled else "")
                     + (moves if app["state"] == "running" else ""))
    return "\n".join(lines)


def _ranges(indices: list[int]) -> str:
    indices = sorted(indices)
    parts: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


def _token(ns: argparse.Namespace, token_file: Path) -> str:
    """The cluster token: the file given with --token-file, else FAABRIC_TOKEN, else the
    configured `token_file`."""
    from faabric.transport.auth import TOKEN_ENV, load_token

    return load_token(token_file, None if ns.token_file else os.environ.get(TOKEN_ENV))


def _token_made(ns: argparse.Namespace, token_file: Path) -> tuple[str, bool]:
    """Like `_token`, but a missing token file is created; says whether it was."""
    from faabric.transport.auth import TOKEN_ENV, ensure_token

    return ensure_token(token_file, None if ns.token_file else os.environ.get(TOKEN_ENV))


def _announce(token_file: Path, created: bool) -> None:
    if created:
        print(f"faabric: created the cluster token {token_file}: workers and clients of "
              "this cluster need it (copy it to the other hosts, mode 600)",
              file=sys.stderr, flush=True)


def _options(ns: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {name: getattr(ns, name, None) for name in names}


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
