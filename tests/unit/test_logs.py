"""Log lines: the format chosen by flag or environment, JSON objects one per line with the
record's extra fields and the process's own, and text lines as they always were."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from faabric.cli import EXIT_USAGE, main
from faabric.errors import ConfigError
from faabric.logs import LOG_FORMAT_ENV, configure, log_format, tag


@pytest.fixture
def root() -> Iterator[None]:
    """Put the root logger back as it was after the test. The tests log on a logger outside
    `faabric`, whose level other code may have set."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_the_flag_wins_over_the_environment_and_text_is_the_default() -> None:
    assert log_format("json", {LOG_FORMAT_ENV: "text"}) == "json"
    assert log_format(None, {LOG_FORMAT_ENV: "json"}) == "json"
    assert log_format(None, {LOG_FORMAT_ENV: ""}) == "text"
    assert log_format(None, {}) == "text"


def test_an_unknown_format_is_refused_naming_where_it_came_from() -> None:
    with pytest.raises(ConfigError, match="FAABRIC_LOG_FORMAT must be text or json"):
        log_format(None, {LOG_FORMAT_ENV: "xml"})
    with pytest.raises(ConfigError, match="--log-format"):
        log_format("yaml", {})


@pytest.mark.usefixtures("root")
def test_json_lines_carry_time_level_logger_message_and_extras() -> None:
    stream = io.StringIO()
    configure(logging.INFO, "json", stream)
    log = logging.getLogger("tests.logs")
    log.info("app %d cancelled %s", 7, "by client", extra={"app": 7, "host": "a"})
    log.debug("not shown")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed\non two lines")
    first, second = (json.loads(line) for line in lines(stream))
    assert first["level"] == "info"
    assert first["logger"] == "tests.logs"
    assert first["message"] == "app 7 cancelled by client"
    assert (first["app"], first["host"]) == (7, "a")
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert "exception" not in first
    assert second["level"] == "error"
    assert second["message"] == "it failed\non two lines"
    assert "ValueError: boom" in second["exception"]


@pytest.mark.usefixtures("root")
def test_the_process_fields_are_added_unless_a_record_has_its_own() -> None:
    stream = io.StringIO()
    configure(logging.INFO, "json", stream)
    tag(host="worker-1")
    log = logging.getLogger("tests.logs")
    log.warning("plain")
    log.warning("about another", extra={"host": "worker-2"})
    log.warning("odd value", extra={"peer": object()})
    plain, other, odd = (json.loads(line) for line in lines(stream))
    assert plain["host"] == "worker-1"
    assert other["host"] == "worker-2"
    assert odd["peer"].startswith("<object")


@pytest.mark.usefixtures("root")
def test_text_lines_are_unchanged() -> None:
    stream = io.StringIO()
    configure(logging.WARNING, "text", stream)
    tag(host="worker-1")
    logging.getLogger("tests.logs").warning("lost %s", "b", extra={"host": "x"})
    assert lines(stream) == ["faabric tests.logs: lost b"]


def test_the_command_refuses_an_unknown_format_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "xml")
    assert main(["status"]) == EXIT_USAGE
    message = "faabric: FAABRIC_LOG_FORMAT must be text or json, not 'xml'\n"
    assert capsys.readouterr().err == message
