"""Configuration loading: override > FAABRIC_<FIELD> > TOML table > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from faabric.config import PlannerConfig, RunConfig, WorkerConfig, default_cache_dir, load
from faabric.errors import ConfigError


@pytest.fixture(autouse=True)
def no_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test in an empty directory, so no ./faabric.toml is picked up."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_toml(path: Path, text: str) -> dict[str, str]:
    path.write_text(text)
    return {"FAABRIC_CONFIG": str(path)}


def test_defaults() -> None:
    assert load(PlannerConfig, "planner", environ={}) == PlannerConfig()
    assert load(RunConfig, "run", environ={}).timeout == 300.0


def test_precedence(tmp_path: Path) -> None:
    env = write_toml(
        tmp_path / "c.toml",
        "[planner]\nport = 1001\ncontrol_port = 1002\nkeepalive_timeout = 7.5\n"
        "max_request_bytes = 1003\n",
    )
    env |= {"FAABRIC_CONTROL_PORT": "2002", "FAABRIC_KEEPALIVE_TIMEOUT": "8.5"}
    config = load(PlannerConfig, "planner", {"keepalive_timeout": 9.5}, environ=env)
    assert config.port == 1001  # TOML over default
    assert config.control_port == 2002  # env over TOML
    assert config.keepalive_timeout == 9.5  # override over env
    assert config.max_request_bytes == 1003
    assert config.max_module_bytes == PlannerConfig().max_module_bytes  # default


def test_none_overrides_are_ignored() -> None:
    env = {"FAABRIC_PORT": "1234"}
    assert load(PlannerConfig, "planner", {"port": None}, environ=env).port == 1234


def test_other_sections_are_ignored(tmp_path: Path) -> None:
    env = write_toml(tmp_path / "c.toml", "[worker]\nslots = 3\n[planner]\nport = 5\n")
    assert load(WorkerConfig, "worker", environ=env).slots == 3
    assert load(PlannerConfig, "planner", environ=env).port == 5
    assert load(RunConfig, "run", environ=env) == RunConfig(
        slots=RunConfig().slots, cache_dir=RunConfig().cache_dir
    )


def test_local_faabric_toml(no_local_file: Path) -> None:
    (no_local_file / "faabric.toml").write_text("[planner]\nport = 4321\n")
    assert load(PlannerConfig, "planner", environ={}).port == 4321


def test_values_are_coerced() -> None:
    env = {"FAABRIC_SLOTS": "4", "FAABRIC_RECONNECT_FOR": "2", "FAABRIC_NAME": "n"}
    config = load(WorkerConfig, "worker", environ=env)
    assert config.slots == 4
    assert config.reconnect_for == 2.0 and isinstance(config.reconnect_for, float)
    assert config.name == "n"


@pytest.mark.parametrize(
    ("cls", "section", "option", "value"),
    [
        (PlannerConfig, "planner", "port", "eighty"),
        (PlannerConfig, "planner", "port", "-1"),
        (PlannerConfig, "planner", "port", "1.5"),
        (PlannerConfig, "planner", "keepalive_timeout", "0"),
        (PlannerConfig, "planner", "keepalive_timeout", "-2"),
        (PlannerConfig, "planner", "keepalive_timeout", "soon"),
        (WorkerConfig, "worker", "slots", "many"),
        (RunConfig, "run", "timeout", ""),
    ],
)
def test_bad_env_value_names_the_option(cls: type, section: str, option: str, value: str) -> None:
    env = {f"FAABRIC_{option.upper()}": value}
    with pytest.raises(ConfigError, match=option):
        load(cls, section, environ=env)


def test_bad_override_names_the_option() -> None:
    with pytest.raises(ConfigError, match="slots"):
        load(WorkerConfig, "worker", {"slots": "x"}, environ={})


def test_bad_toml_value_names_the_option(tmp_path: Path) -> None:
    env = write_toml(tmp_path / "c.toml", '[planner]\nport = "http"\n')
    with pytest.raises(ConfigError, match="port"):
        load(PlannerConfig, "planner", environ=env)


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load(PlannerConfig, "planner", environ={"FAABRIC_CONFIG": str(missing)})
    assert str(missing) in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    env = write_toml(tmp_path / "c.toml", "[planner\nport = ")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(PlannerConfig, "planner", environ=env)


def test_section_must_be_a_table(tmp_path: Path) -> None:
    env = write_toml(tmp_path / "c.toml", 'planner = "x"\n')
    with pytest.raises(ConfigError, match=r"\[planner\]"):
        load(PlannerConfig, "planner", environ=env)


def test_path_expansion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load(WorkerConfig, "worker", environ={"FAABRIC_CACHE_DIR": "~/cache"})
    assert config.cache_dir == tmp_path / "home" / "cache"
    assert isinstance(config.cache_dir, Path)
    config = load(RunConfig, "run", {"cache_dir": Path("rel")}, environ={})
    assert config.cache_dir == Path("rel")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "faabric"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "faabric"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAABRIC_CONFIG", raising=False)
    monkeypatch.setenv("FAABRIC_RETAIN_FINISHED", "12")
    assert load(PlannerConfig, "planner").retain_finished == 12


def test_worker_host_name() -> None:
    assert WorkerConfig(name="w7").host_name() == "w7"
    assert WorkerConfig().host_name().endswith(f"-{__import__('os').getpid()}")


def test_nan_is_refused() -> None:
    with pytest.raises(ConfigError, match="keepalive_timeout"):
        load(PlannerConfig, "planner", environ={"FAABRIC_KEEPALIVE_TIMEOUT": "nan"})


def test_toml_float_for_an_int_is_refused(tmp_path: Path) -> None:
    env = write_toml(tmp_path / "c.toml", "[planner]\nport = 1.5\n")
    with pytest.raises(ConfigError, match="port"):
        load(PlannerConfig, "planner", environ=env)
