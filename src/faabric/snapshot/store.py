"""Bookkeeping of the snapshots a host holds: by key, per app, reference-counted.

`SnapshotStore` keeps the current `Snapshot` of each key and who still uses which value.
Users `acquire` a key (a thread batch about to restore it) and `release` it when done. A key
that is deleted, or whose app ended (`release_app`), disappears at once for new callers, and
a value replaced by `push` or `update` is no longer handed out; but while the key has users,
such values are only retired, and they are freed when its last user releases it. "Freed"
means the store forgets the value and calls `on_free(key, snapshot)`, where a worker closes
whatever it built from it (a memfd image).
No I/O, no locks: the owner serialises calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from faabric.errors import SnapshotError
from faabric.snapshot.diff import Diff
from faabric.snapshot.image import DEFAULT_OPTIONS, Snapshot, SnapshotOptions
from faabric.snapshot.patch import patch_snapshot

OnFree = Callable[[str, Snapshot], None]


def _ignore(key: str, snapshot: Snapshot) -> None:
    del key, snapshot


@dataclass(slots=True)
class _Entry:
    app_id: int
    current: Snapshot
    users: int = 0
    retired: list[Snapshot] = field(default_factory=list)  # replaced while in use
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class StoreStats:
    keys: int  # live keys (not deleted)
    held: int  # values held, including retired ones and deleted keys still in use
    stored_bytes: int  # bytes of payload in the held values


class SnapshotStore:
    """Snapshots by key; see the module doc for the lifetime rules."""

    def __init__(self, on_free: OnFree = _ignore,
                 options: SnapshotOptions = DEFAULT_OPTIONS) -> None:
        self._entries: dict[str, _Entry] = {}
        self._on_free = on_free
        self._options = options

    def push(self, key: str, app_id: int, snapshot: Snapshot) -> None:
        """Store `snapshot` under `key` for app `app_id`, replacing the key's value."""
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(app_id, snapshot)
            return
        if entry.deleted:  # still in use: its values wait for those users, under the new entry
            self._entries[key] = _Entry(app_id, snapshot, entry.users,
                                        _values(entry, current=True))
            return
        if entry.app_id != app_id:
            raise SnapshotError(f"snapshot {key!r} belongs to app {entry.app_id}, not {app_id}")
        self._replace(key, entry, snapshot)

    def get(self, key: str) -> Snapshot:
        return self._live(key).current

    def acquire(self, key: str) -> Snapshot:
        """The key's current value, counted as in use until `release(key)`."""
        entry = self._live(key)
        entry.users += 1
        return entry.current

    def release(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is None or entry.users == 0:
            raise SnapshotError(f"snapshot {key!r} is not in use")
        entry.users -= 1
        if entry.users == 0:
            self._drain(key, entry)

    def update(self, key: str, diffs: Sequence[Diff]) -> Snapshot:
        """Merge `diffs` into the key's value (in order); returns the new value.

        To bring a snapshot up to date with its memory, diff that memory against the snapshot
        with the default (byte-wise) `RegionMap`: the update then reproduces it exactly.
        """
        entry = self._live(key)
        fresh = patch_snapshot(entry.current, diffs, self._options)
        if fresh is not entry.current:
            self._replace(key, entry, fresh)
        return fresh

    def delete(self, key: str) -> None:
        """Forget `key` now; its values are freed once no user holds them."""
        entry = self._live(key)
        entry.deleted = True
        self._drain(key, entry)

    def release_app(self, app_id: int) -> int:
        """Delete every key of the app; returns how many there were."""
        keys = [k for k, e in self._entries.items() if e.app_id == app_id and not e.deleted]
        for key in keys:
            self.delete(key)
        return len(keys)

    def keys(self, app_id: int | None = None) -> tuple[str, ...]:
        return tuple(sorted(k for k, e in self._entries.items() if not e.deleted
                            and (app_id is None or e.app_id == app_id)))

    def stats(self) -> StoreStats:
        held = [v for e in self._entries.values() for v in _values(e, current=True)]
        return StoreStats(len(self.keys()), len(held), sum(len(v.data) for v in held))

    def _live(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None or entry.deleted:
            raise SnapshotError(f"no snapshot {key!r}")
        return entry

    def _replace(self, key: str, entry: _Entry, snapshot: Snapshot) -> None:
        old, entry.current = entry.current, snapshot
        if entry.users:
            entry.retired.append(old)
        else:
            self._on_free(key, old)

    def _drain(self, key: str, entry: _Entry) -> None:
        """Free what no user holds any more: retired values, and everything if deleted."""
        if entry.users:
            return
        for value in _values(entry, current=entry.deleted):
            self._on_free(key, value)
        entry.retired.clear()
        if entry.deleted and self._entries.get(key) is entry:
            del self._entries[key]


def _values(entry: _Entry | None, current: bool = False) -> list[Snapshot]:
    if entry is None:
        return []
    return [*entry.retired, *([entry.current] if current else [])]
