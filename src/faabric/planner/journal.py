"""The planner's journal: an SQLite file (stdlib `sqlite3`) recording every app submitted and
the results of those that finished, so that a restarted planner never hands out an app id
again and knows which apps were in flight when it stopped.

One planner process holds a journal at a time (an exclusive `flock` on the file, taken at
open). Only the planner service writes it, with its lock held. Times are Unix times. It must
not decide anything: the core is told what the journal held (`AppsRecovered`), and a write
that fails is logged and the planner carries on (the journal is a record, not a gate).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faabric.errors import BrokenError, ConfigError
from faabric.messages.control import CONTROL_CODEC
from faabric.messages.types import AppSpec, GranuleResult

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PRUNE_EVERY = 100  # finished apps recorded between two prunings of the oldest ones
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS apps (
    id INTEGER PRIMARY KEY,
    spec BLOB NOT NULL,
    submitted REAL NOT NULL,
    finished REAL,
    results BLOB
);
"""


@dataclass(frozen=True, slots=True)
class JournaledApp:
    """One app as the journal has it; `finished` is None while it was in flight."""

    app_id: int
    spec: AppSpec
    submitted: float
    finished: float | None
    results: tuple[GranuleResult, ...]


class Journal:
    """The journal at `path` (created, with its directory, if missing), keeping the newest
    `retain` finished apps. Raises ConfigError if it cannot be opened or another planner
    holds it."""

    def __init__(self, path: Path, retain: int) -> None:
        self.path = path
        self._retain = retain
        self._since_prune = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the journal {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise ConfigError(f"the journal {path} is in use by another planner") from None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            os.close(self._lock_fd)
            raise ConfigError(f"cannot use the journal {path}: {exc}") from exc

    def close(self) -> None:
        """Let go of the file (and of the lock on it)."""
        self._db.close()
        os.close(self._lock_fd)

    def last_id(self) -> int:
        """The highest app id ever handed out (0 for a new journal)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_id'").fetchone()
        return int(row[0]) if row else 0

    def load(self) -> list[JournaledApp]:
        """Every app kept, oldest first. Rows that cannot be read are skipped (logged)."""
        self._prune()
        apps: list[JournaledApp] = []
        rows = self._db.execute(
            "SELECT id, spec, submitted, finished, results FROM apps ORDER BY id")
        for app_id, spec, submitted, finished, results in rows:
            try:
                apps.append(JournaledApp(app_id, _spec(spec), submitted, finished,
                                         _results(results)))
            except (BrokenError, ValueError) as exc:
                log.warning("journal %s: skipped app %d, unreadable: %s", self.path, app_id, exc)
        return apps

    def submitted(self, apps: Sequence[tuple[int, AppSpec]], wall: float) -> None:
        """Record apps just accepted (one transaction)."""
        rows = [(app_id, CONTROL_CODEC.encode(spec), wall) for app_id, spec in apps]
        last = max(app_id for app_id, _ in apps)
        self._write(
            ("INSERT OR REPLACE INTO apps (id, spec, submitted) VALUES (?, ?, ?)", rows),
            ("INSERT INTO meta VALUES ('last_id', ?) ON CONFLICT(key) DO UPDATE "
             "SET value = max(value, excluded.value)", [(last,)]),
        )

    def finished(self, app_id: int, results: Sequence[GranuleResult], wall: float) -> None:
        """Record an app's end and its results."""
        blob = CONTROL_CODEC.encode(tuple(results))
        self._write(("UPDATE apps SET finished = ?, results = ? WHERE id = ?",
                     [(wall, blob, app_id)]))
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self._prune()

    def forget_apps(self) -> None:
        """Drop every app (the planner was reset); the highest id stays."""
        self._write(("DELETE FROM apps", [()]))

    def _prune(self) -> None:
        """Drop the finished apps beyond the newest `retain`."""
        self._since_prune = 0
        self._write(("DELETE FROM apps WHERE finished IS NOT NULL AND id NOT IN (SELECT id "
                     "FROM apps WHERE finished IS NOT NULL ORDER BY id DESC LIMIT ?)",
                     [(self._retain,)]))

    def _write(self, *statements: tuple[str, Sequence[tuple[object, ...]]]) -> None:
        try:
            self._db.execute("BEGIN")
            for sql, rows in statements:
                self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("journal %s: a write failed (%s); apps go on unrecorded", self.path, exc)
            try:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            except sqlite3.Error:  # closed (the planner is stopping), or broken
                pass


def _spec(blob: bytes) -> AppSpec:
    spec = CONTROL_CODEC.decode(blob)
    if not isinstance(spec, AppSpec):
        raise ValueError(f"a {type(spec).__name__} where an app was expected")
    return spec


def _results(blob: bytes | None) -> tuple[GranuleResult, ...]:
    if blob is None:
        return ()
    results = CONTROL_CODEC.decode(blob)
    if not isinstance(results, tuple) or not all(isinstance(r, GranuleResult) for r in results):
        raise ValueError("results that are not granule results")
    return tuple(results)
