"""The user's side of elastic OpenMP: `faabric run --elastic` (or FAABRIC_ELASTIC) reaches
the run config and the submitted app; the HTTP API takes `elastic` as a boolean; app
documents with "resized" and "kept-local" events match the OpenAPI schema. No cluster is started."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from faabric import cli
from faabric.config import RunConfig, load
from faabric.messages.control import CONTROL_CODEC
from faabric.messages.types import AppSpec
from faabric.planner.core import (
    AppSubmitted,
    HostRegistered,
    PlannerCore,
    TeamKeptOnHost,
    TeamSizeChanged,
)
from faabric.planner.views import app_document, parse_app_spec
from faabric.run import run_program

DIGEST = "ab" * 32


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[RunConfig]:
    """Calls of `run_program`, recorded instead of run."""
    monkeypatch.chdir(tmp_path)  # no faabric.toml around
    for name in ("FAABRIC_CONFIG", "FAABRIC_ELASTIC"):
        monkeypatch.delenv(name, raising=False)
    calls: list[RunConfig] = []

    def fake_run(config: RunConfig, *args: Any, **kwargs: Any) -> int:
        calls.append(config)
        return 0

    monkeypatch.setattr("faabric.run.run_program", fake_run)
    return calls


@pytest.mark.parametrize(
    ("options", "environ", "expected"),
    [([], {}, False), (["--elastic"], {}, True), ([], {"FAABRIC_ELASTIC": "true"}, True),
     ([], {"FAABRIC_ELASTIC": "0"}, False), (["--elastic"], {"FAABRIC_ELASTIC": "no"}, True)],
)
def test_run_elastic_option(
    runs: list[RunConfig], monkeypatch: pytest.MonkeyPatch, options: list[str],
    environ: dict[str, str], expected: bool,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["run", *options, "app.c"]) == 0
    assert [config.elastic for config in runs] == [expected]


def test_a_bad_elastic_setting_is_a_config_error(
    runs: list[RunConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAABRIC_ELASTIC", "sometimes")
    assert cli.main(["run", "app.c"]) == 1
    assert runs == []
    assert load(RunConfig, "run", environ={"FAABRIC_ELASTIC": "on"}).elastic is True


class FakeClient:
    """Stands for PlannerClient in `run_program`: records the submitted app."""

    submitted: list[dict[str, Any]] = []

    def __init__(self, url: str, *, token: str) -> None:
        pass

    def upload_module(self, data: bytes) -> str:
        return DIGEST

    def submit(self, app: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.submitted.append(app)
        return {"app_id": 1, "state": "running", "size": app["size"]}

    def wait_app(self, app_id: int, timeout: float, **kwargs: Any) -> dict[str, Any]:
        return {"app_id": app_id, "results": [], "finished": 1.0, "size": 1}

    def close(self) -> None:
        pass

    def follow_output(self, app_id: int, start: int = 0) -> NoOutput:
        return NoOutput()


class NoOutput:
    """An output stream that ends at once (the results hold everything)."""

    def events(self) -> Iterator[Any]:
        return iter(())

    def close(self) -> None:
        pass


@pytest.mark.parametrize("elastic", [False, True])
def test_the_submitted_app_says_whether_it_is_elastic(
    monkeypatch: pytest.MonkeyPatch, elastic: bool
) -> None:
    FakeClient.submitted = []
    monkeypatch.setattr("faabric.run.PlannerClient", FakeClient)
    monkeypatch.setattr("faabric.run.load_program", lambda *args, **kwargs: b"\0asm")
    config = RunConfig(planner="http://127.0.0.1:1", elastic=elastic)
    assert run_program(config, "app.wasm", [], token="t" * 16) == 0
    assert [app["elastic"] for app in FakeClient.submitted] == [elastic]
    spec = parse_app_spec(FakeClient.submitted[0] | {"input": ""})
    assert spec.elastic is elastic


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False)])
def test_api_elastic_field(value: bool, expected: bool) -> None:
    spec = parse_app_spec({"module": DIGEST, "elastic": value})
    assert spec.elastic is expected
    assert CONTROL_CODEC.decode(CONTROL_CODEC.encode(spec)) == spec
    assert parse_app_spec({"module": DIGEST}).elastic is False


@pytest.mark.parametrize("value", [1, 0, "true", None, [True]])
def test_api_elastic_must_be_a_boolean(value: Any) -> None:
    with pytest.raises(ValueError, match="'elastic' must be true or false"):
        parse_app_spec({"module": DIGEST, "elastic": value})


def test_resized_events_match_the_openapi_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec_doc = json.loads(resources.files("faabric.planner").joinpath("openapi.json").read_text())
    core = PlannerCore(clock=lambda: 5.0, keepalive_timeout=5.0)
    core.handle(HostRegistered("a", 4))
    core.handle(AppSubmitted(1, AppSpec(module=DIGEST, size=1, elastic=True)))
    core.handle(TeamSizeChanged(1, 0, "a", 3))
    view = core.app(1)
    assert view is not None
    doc = app_document(view, binary=False)
    assert doc["events"] == [{"time": 5.0, "kind": "resized", "epoch": 0, "threads": 3,
                              "detail": "resized: granule 0 on a runs 3 threads",
                              "ranks": [0], "hosts": ["a"]}]
    components = spec_doc["components"]
    for schema, value in (("App", doc), ("AppSpec", {"module": DIGEST, "elastic": True})):
        root = {"$ref": f"#/components/schemas/{schema}", "components": components}
        jsonschema.Draft202012Validator(root).validate(value)


def test_kept_local_events_match_the_openapi_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec_doc = json.loads(resources.files("faabric.planner").joinpath("openapi.json").read_text())
    core = PlannerCore(clock=lambda: 5.0, keepalive_timeout=5.0)
    core.handle(HostRegistered("a", 4))
    core.handle(AppSubmitted(1, AppSpec(module=DIGEST, size=1)))
    core.handle(TeamKeptOnHost(1, 0, "a", 8, "across 2 hosts 2.0 s, on 1 host 1.0 s"))
    view = core.app(1)
    assert view is not None
    doc = app_document(view, binary=False)
    detail = "kept-local: granule 0 on a runs its 8-thread team here: across 2 hosts 2.0 s, " \
        "on 1 host 1.0 s"
    assert doc["events"] == [{"time": 5.0, "kind": "kept-local", "epoch": 0, "threads": 8,
                              "detail": detail, "ranks": [0], "hosts": ["a"]}]
    root = {"$ref": "#/components/schemas/App", "components": spec_doc["components"]}
    jsonschema.Draft202012Validator(root).validate(doc)
