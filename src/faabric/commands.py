"""Smaller `faabric` commands: `logs APP`, `completion bash|zsh`, and `status --watch`.

`cli` builds the parser and hands these a way to reach the planner (`Connect`); each command
prints and returns an exit status. `logs` prints a finished app's output from the planner's
retained results (`-f` follows a running app's output stream first); `watch_status` redraws
the status every `interval` seconds until Ctrl-C, which ends it quietly. Nothing here
schedules or keeps state between calls.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from faabric.completion import SHELLS, script
from faabric.errors import ApiError, FaabricError
from faabric.planner.client import PlannerClient
from faabric.run_output import Follow, OutputPrinter

Connect = Callable[[argparse.Namespace], PlannerClient]
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen
FOLLOW_WAIT = 600.0  # seconds `logs -f` waits for the app's end per request


def add_logs(sub: Any, connect: Connect, common: Callable[[Any], None]) -> None:
    p = sub.add_parser("logs", help="print an app's output (from the planner's results)",
                       description="Print what an app's granules wrote, granule by granule, "
                       "from the results the planner keeps (the 10000 most recent finished "
                       "apps). With -f, follow a running app's output as it is produced.")
    p.add_argument("app", type=int, metavar="APP", help="the app id")
    p.add_argument("-f", "--follow", action="store_true",
                   help="print the output as it is produced until the app ends")
    p.add_argument("--tag-output", action="store_true", dest="tag_output",
                   help="prefix every line with [APP,INDEX]<stdout>: or <stderr>:")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="include the backtraces of trapped granules")
    common(p)
    p.set_defaults(func=lambda ns: logs(ns, connect(ns)))


def add_completion(sub: Any, parser: Callable[[], argparse.ArgumentParser]) -> None:
    p = sub.add_parser("completion", help="print a shell completion script",
                       description="Print a completion script for faabric: "
                       "'source <(faabric completion bash)' (or zsh) in your shell's rc file.")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=lambda ns: _print(script(parser(), ns.shell)))


def _print(text: str) -> int:
    sys.stdout.write(text)
    return 0


def logs(ns: argparse.Namespace, client: PlannerClient) -> int:
    """`faabric logs APP`: the app's output; 1 if the planner does not know the app."""
    try:
        doc = client.app(ns.app)
        size = int(doc["size"])
        printer = OutputPrinter(ns.app, size, sys.stdout.buffer, sys.stderr.buffer,
                                tag=ns.tag_output, verbose=ns.verbose)
        if ns.follow and doc["finished"] is None:
            follow = Follow(client.follow_output(ns.app), printer)
            doc = client.wait_app(ns.app, FOLLOW_WAIT)
            follow.stop()
    except ApiError as exc:
        if exc.status != 404:
            raise
        print(f"faabric: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        client.close()
    printer.finish(doc["results"])
    if doc["finished"] is None:
        print(f"faabric: app {ns.app} is {doc['state']}: {len(doc['results'])} of {size} "
              "granules have ended (-f follows it)", file=sys.stderr)
    return 0


def watch_status(client: PlannerClient, show: Callable[[dict[str, Any]], str],
                 interval: float, frames: int | None = None) -> int:
    """Print the planner's status every `interval` seconds (`frames` times, or until
    Ctrl-C); on a terminal each frame replaces the last."""
    tty = sys.stdout.isatty()
    stop = threading.Event()
    try:
        count = 0
        while frames is None or count < frames:
            count += 1
            try:
                text = show(client.status())
            except FaabricError as exc:  # the planner may come back: say so and go on
                text = f"faabric: {exc}"
            stamp = time.strftime("%H:%M:%S")
            head = f"{stamp}  every {interval:g} s, Ctrl-C to stop"
            sys.stdout.write((CLEAR if tty else "") + head + "\n" + text + "\n"
                             + ("" if tty else "\n"))
            sys.stdout.flush()
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0
