"""The `DirtyTracker` protocol and the names of the tracking mechanisms.

Kept apart so both mechanisms (`uffd`, `dirty`) can name themselves without importing each
other. No behaviour lives here.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from faabric.snapshot.ranges import Ranges


class TrackingMode(Enum):
    AUTO = "auto"  # uffd when available, else compare
    UFFD = "uffd"  # userfaultfd write-protect + PAGEMAP_SCAN
    COMPARE = "compare"  # page compare against a private copy


class DirtyTracker(Protocol):
    """Reports the pages of one memory written since tracking (re)started.

    `start()` begins, or forgets what was written so far; `dirty_pages()` returns what was
    written since the previous call or `start()`, as page-aligned byte ranges relative to the
    memory's start; `resize(length)` follows a memory that grew (the new pages count as
    written); `stop()` releases the tracker.
    """

    @property
    def mode(self) -> TrackingMode: ...

    def start(self) -> None: ...

    def dirty_pages(self) -> Ranges: ...

    def resize(self, length: int) -> None: ...

    def stop(self) -> None: ...
