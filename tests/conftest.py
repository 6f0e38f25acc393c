"""Fixtures for every test: `faabric.cli.main` points the root logger at the stderr of the
moment, which under pytest's capture is a stream closed when the test ends; each test gets
the root logger's handlers and level back as they were, so a background thread logging
later does not write to a closed stream."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
