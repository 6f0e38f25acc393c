"""Translation between the planner's values and the public API's JSON (or msgpack) documents.

Requests are validated here, field by field, into an `AppSpec`; a bad field raises
`ValueError` with a message that names it, which the HTTP layer answers with 400. Responses
are plain dicts. With `binary=True` (msgpack clients) byte fields stay bytes; in JSON, stdout
and stderr are UTF-8 text (invalid bytes replaced) and output is base64.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from typing import Any

from faabric.messages.types import (
    AppInfo,
    AppSpec,
    Cancelled,
    Exited,
    Failed,
    GranuleResult,
    HostInfo,
    Outcome,
    TimedOut,
    Trapped,
    describe,
    exit_status,
)
from faabric.planner.core import AppEvent, AppView
from faabric.planner.modules import is_digest
from faabric.scheduling import POLICIES

MAX_APP_SIZE = 100_000
MAX_MIGRATE_EVERY = (1 << 31) - 1
MAX_BATCH = 10_000  # apps per batch submission, and ids per multi-app query
MAX_USER = 256  # characters of a user name
_ID_RANGE = re.compile(r"([0-9]{1,18})(?:-([0-9]{1,18}))?")


def parse_app_spec(doc: Any) -> AppSpec:
    """Validate a submitted app document; raises ValueError naming the bad field."""
    if not isinstance(doc, Mapping):
        raise ValueError("the body must be a JSON object")
    if not all(isinstance(key, str) for key in doc):
        raise ValueError("every field name must be a string")
    unknown = set(doc) - {"module", "size", "program", "args", "env", "input", "timeout",
                          "memory_limit", "migrate_every", "elastic", "user", "policy"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    module = doc.get("module")
    if not isinstance(module, str) or not is_digest(module):
        raise ValueError("'module' must be the sha256 hex digest of an uploaded module")
    size = _int_field(doc, "size", 1, 1, MAX_APP_SIZE)
    program = doc.get("program", "main")
    if not isinstance(program, str) or not program:
        raise ValueError("'program' must be a non-empty string")
    args = doc.get("args", [])
    if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
        raise ValueError("'args' must be a list of strings")
    env = doc.get("env", {})
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValueError("'env' must be an object of strings")
    return AppSpec(
        module=module,
        size=size,
        program=program,
        args=tuple(args),
        env=tuple(sorted(env.items())),
        input=_bytes_field(doc, "input"),
        timeout=_number_field(doc, "timeout", 300.0),
        memory_limit=_int_field(doc, "memory_limit", 1 << 30, 1 << 16, 1 << 32),
        migrate_every=_int_field(doc, "migrate_every", 1, 0, MAX_MIGRATE_EVERY),
        elastic=_bool_field(doc, "elastic"),
        user=_text_field(doc, "user", MAX_USER),
        policy=_policy_field(doc),
    )


def parse_batch(doc: Any) -> list[AppSpec]:
    """Validate a batch submission `{"apps": [app, ...]}`; raises ValueError naming the bad
    field, with the app's position (`apps[3]: 'size' must be ...`)."""
    if not isinstance(doc, Mapping) or set(doc) != {"apps"}:
        raise ValueError("the body must be an object with one field, 'apps'")
    apps = doc["apps"]
    if not isinstance(apps, list | tuple) or not 1 <= len(apps) <= MAX_BATCH:
        raise ValueError(f"'apps' must be a list of 1 to {MAX_BATCH} apps")
    specs = []
    for position, app in enumerate(apps):
        try:
            specs.append(parse_app_spec(app))
        except ValueError as exc:
            raise ValueError(f"apps[{position}]: {exc}") from None
    return specs


def parse_ids(text: str) -> list[int]:
    """App ids from a query like `4,7-9` (ranges inclusive), in order; raises ValueError."""
    ids: list[int] = []
    for part in text.split(","):
        match = _ID_RANGE.fullmatch(part)
        if match is None:
            raise ValueError("'ids' must be app ids or ranges like 4,7-9")
        first = int(match[1])
        last = first if match[2] is None else int(match[2])
        if last < first or len(ids) + last - first + 1 > MAX_BATCH:
            raise ValueError(f"'ids' must name 1 to {MAX_BATCH} apps, ranges low-high")
        ids.extend(range(first, last + 1))
    return ids


def app_document(view: AppView, *, binary: bool, wall_offset: float = 0.0) -> dict[str, Any]:
    """The public document for one app; `wall_offset` turns planner clock times into Unix time."""
    statuses = [exit_status(r.outcome) for r in view.results]
    finished = view.finished is not None
    return {
        "app_id": view.app_id,
        "program": view.spec.program,
        "size": view.spec.size,
        "state": str(view.state),
        "submitted": view.submitted + wall_offset,
        "started": None if view.started is None else view.started + wall_offset,
        "finished": None if view.finished is None else view.finished + wall_offset,
        "status": (next((s for s in statuses if s != 0), 0) if finished else None),
        "placement": [{"index": i, "host": h} for i, h in view.placement],
        "scaled": [{"host": h, "slots": n} for h, n in view.scaled],
        "migrations": view.migrations,
        "events": [event_document(e, wall_offset) for e in view.events],
        "results": [result_document(r, binary=binary) for r in view.results],
        "truncated": any(r.truncated for r in view.results),
    }


def event_document(event: AppEvent, wall_offset: float = 0.0) -> dict[str, Any]:
    """The public document for one entry of an app's placement history (`threads` only
    for resized and kept-local events)."""
    doc: dict[str, Any] = {
        "time": event.time + wall_offset,
        "kind": str(event.kind),
        "epoch": event.epoch,
        "detail": event.detail,
        "ranks": list(event.ranks),
        "hosts": list(event.hosts),
    }
    if event.threads is not None:
        doc["threads"] = event.threads
    return doc


def result_document(result: GranuleResult, *, binary: bool) -> dict[str, Any]:
    """The public document for one granule result."""
    return {
        "index": result.index,
        "host": result.host,
        "status": exit_status(result.outcome),
        "outcome": outcome_document(result.outcome),
        "stdout": result.stdout if binary else result.stdout.decode("utf-8", "replace"),
        "stderr": result.stderr if binary else result.stderr.decode("utf-8", "replace"),
        "output": result.output if binary else base64.b64encode(result.output).decode(),
        "started": result.started,
        "finished": result.finished,
        "truncated": result.truncated,
    }


def outcome_document(outcome: Outcome) -> dict[str, Any]:
    """A tagged object: `{"kind": "exited", "code": 0, "message": "exited with 0"}`."""
    doc: dict[str, Any] = {"message": describe(outcome)}
    match outcome:
        case Exited(code):
            doc.update(kind="exited", code=code)
        case Trapped():
            doc.update(kind="trapped")
        case TimedOut(seconds):
            doc.update(kind="timed_out", seconds=seconds)
        case Failed():
            doc.update(kind="failed")
        case Cancelled():
            doc.update(kind="cancelled")
    return doc


def host_document(host: HostInfo) -> dict[str, Any]:
    """The public document for one worker host."""
    return {"name": host.name, "slots": host.slots, "used": host.used,
            "evicting": host.evicting}


def app_info_document(info: AppInfo) -> dict[str, Any]:
    """The public document for one in-flight app."""
    return {
        "app_id": info.app_id,
        "program": info.program,
        "size": info.size,
        "state": str(info.state),
        "done": info.done,
        "placement": [{"index": i, "host": h} for i, h in info.placement],
        "scaled": [{"host": h, "slots": n} for h, n in info.scaled],
        "migrations": info.migrations,
    }


def _int_field(doc: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"'{name}' must be an integer from {low} to {high}")
    return value


def _bool_field(doc: Mapping[str, Any], name: str) -> bool:
    value = doc.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"'{name}' must be true or false")
    return value


def _text_field(doc: Mapping[str, Any], name: str, limit: int) -> str:
    value = doc.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"'{name}' must be a string of at most {limit} characters")
    return value


def _policy_field(doc: Mapping[str, Any]) -> str:
    value = doc.get("policy", "")
    if value != "" and value not in POLICIES:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"'policy' must be one of {known} (or empty for the cluster's)")
    return str(value)


def _number_field(doc: Mapping[str, Any], name: str, default: float) -> float:
    value = doc.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < math.inf
    ):
        raise ValueError(f"'{name}' must be a positive number")
    return float(value)


def _bytes_field(doc: Mapping[str, Any], name: str) -> bytes:
    value = doc.get(name, b"")
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"'{name}' is not valid base64: {exc}") from exc
