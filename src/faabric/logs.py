"""How faabric's processes write their logs on stderr: text lines (the default) or JSON lines.

`configure` installs the one handler of a process (planner, worker, cluster), once, from the
command line's choice (`--log-format`, else FAABRIC_LOG_FORMAT, else text). In JSON, each
record is one object on one line: time, level, logger, message, then the record's extra
fields (`app`, `host`, ... as the call gave them, and the process's own, such as a worker's
`host`), and the traceback if there is one. This module must not decide what is logged, nor
hold state beyond the logging module's own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, TextIO

from faabric.errors import ConfigError

FORMATS = ("text", "json")
LOG_FORMAT_ENV = "FAABRIC_LOG_FORMAT"
TEXT_FORMAT = "faabric %(name)s: %(message)s"
# Attributes every record has: the rest came from `extra=` or from the process's fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class _Fields(logging.Filter):
    """Adds the process's fields to every record that does not carry them already."""

    def __init__(self, fields: Mapping[str, object]) -> None:
        super().__init__()
        self._fields = dict(fields)

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self._fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def log_format(flag: str | None, env: Mapping[str, str]) -> str:
    """The format asked for: the flag, else FAABRIC_LOG_FORMAT, else text. Raises
    ConfigError for anything but text or json."""
    chosen = flag if flag is not None else env.get(LOG_FORMAT_ENV, "") or "text"
    if chosen not in FORMATS:
        source = "--log-format" if flag is not None else LOG_FORMAT_ENV
        raise ConfigError(f"{source} must be text or json, not {chosen!r}")
    return chosen


def configure(level: int, fmt: str, stream: TextIO | None = None) -> None:
    """Send this process's log records at `level` and above to `stream` (stderr) in `fmt`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def tag(**fields: object) -> None:
    """Add `fields` (e.g. a worker's `host`) to every record this process logs from now on
    (JSON lines show them; text lines do not)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Fields(fields))


def _timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds: 2026-01-31T12:00:00.123Z."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
