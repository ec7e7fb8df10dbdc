"""The Dockerfile and compose.yaml agree with the code (no Docker engine runs here to build
them): the variables they set are in the configuration reference, the ports are the
server's defaults, the probe and scrape paths are routed, the build context holds what the
wheel is built from, and compose.yaml has the services and profile the README promises."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from chatplane import cli, config
from chatplane.config import Settings
from chatplane.observability import tracing

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("CHATPLANE_", "ANTHROPIC_", "OTEL_", "PROMETHEUS_")


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _instructions(name: str) -> list[str]:
    return [args for word, args in _dockerfile() if word == name]


def _docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _instructions("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _documented() -> set[str]:
    return {v.name for v in config.reference()}


def _routed_get_paths() -> set[str]:
    paths: set[str] = set()
    for proto in (ROOT / "protos").rglob("*.proto"):
        paths |= set(re.findall(r'get:\s*"([^"]+)"', proto.read_text(encoding="utf-8")))
    return paths


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_sets_only_documented_variables() -> None:
    env = _docker_env()
    ours = {k for k in env if k.startswith(PREFIXES)}
    assert ours, env
    assert ours <= _documented(), ours - _documented()


def test_dockerfile_listens_on_every_interface_on_the_default_ports() -> None:
    env = _docker_env()
    defaults = Settings()
    assert env["CHATPLANE_HOST"] == "0.0.0.0"
    assert int(env["CHATPLANE_HTTP_PORT"]) == defaults.http_port
    assert int(env["CHATPLANE_GRPC_PORT"]) == defaults.grpc_port
    exposed = {int(p.split("/")[0]) for args in _instructions("EXPOSE") for p in args.split()}
    assert exposed == {defaults.http_port, defaults.grpc_port}


def test_dockerfile_keeps_the_data_dir_in_a_volume_and_runs_as_a_user() -> None:
    env = _docker_env()
    (volume,) = _instructions("VOLUME")
    assert env["CHATPLANE_DATA_DIR"] in volume
    (user,) = _instructions("USER")
    assert user.split(":")[0] not in ("root", "0")


def test_dockerfile_healthcheck_probes_the_liveness_route() -> None:
    (check,) = _instructions("HEALTHCHECK")
    assert "/healthz" in _routed_get_paths()
    assert "127.0.0.1:%s/healthz" in check
    assert f"'CHATPLANE_HTTP_PORT', '{Settings().http_port}'" in check


def test_dockerfile_runs_chatplane_run() -> None:
    (entry,) = _instructions("ENTRYPOINT")
    (cmd,) = _instructions("CMD")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert entry == '["chatplane"]' and "chatplane" in pyproject["project"]["scripts"]
    assert cmd == '["run"]'
    assert cli._parser().parse_args(["run"]).command == "run"


def test_dockerfile_is_multi_stage_on_the_supported_python() -> None:
    stages = _instructions("FROM")
    assert len(stages) == 2 and stages[0].endswith("AS builder")
    (arg,) = [a for a in _instructions("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert arg.startswith("PYTHON_IMAGE=python:3.11-slim")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert any("pip wheel --no-deps" in run for run in _instructions("RUN"))


def _wheel_inputs() -> set[str]:
    """Top-level files and directories the wheel is built from (pyproject.toml)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    paths = [
        "pyproject.toml",
        pyproject["project"]["readme"],
        *pyproject["project"].get("license-files", []),
        *wheel["packages"],
        *wheel["force-include"],
    ]
    return {Path(p).parts[0] for p in paths}


def test_the_build_context_holds_what_the_wheel_is_built_from() -> None:
    copied: set[str] = set()
    for args in _instructions("COPY"):
        if args.startswith("--from"):
            continue
        *sources, _target = args.split()
        copied |= {s.rstrip("/") for s in sources}
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    needed = _wheel_inputs()
    assert needed <= copied, needed - copied
    assert needed <= allowed, needed - allowed


# --- compose.yaml ---------------------------------------------------------------------


def test_compose_has_chatplane_postgres_redis_and_an_observability_profile() -> None:
    services = _compose()["services"]
    assert set(services) == {"chatplane", "postgres", "redis", "prometheus", "otel-collector"}
    assert services["prometheus"]["profiles"] == ["observability"]
    assert services["otel-collector"]["profiles"] == ["observability"]
    for name in ("chatplane", "postgres", "redis"):
        assert "profiles" not in services[name], name
    assert set(services["chatplane"]["depends_on"]) == {"postgres", "redis"}
    assert services["chatplane"]["build"] == "."


def test_compose_sets_only_documented_variables_that_parse() -> None:
    env = _compose()["services"]["chatplane"]["environment"]
    assert set(env) <= _documented(), set(env) - _documented()
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    interpolated = {m for m in re.findall(r"\$\{([A-Z0-9_]+)", text) if m.startswith(PREFIXES)}
    assert interpolated <= _documented(), interpolated - _documented()
    plain = {k: re.sub(r"\$\{([A-Z0-9_]+):-([^}]*)\}", r"\2", str(v)) for k, v in env.items()}
    settings = Settings.from_env(plain)  # every value the file gives parses
    assert settings.database_url.startswith("postgresql+asyncpg://")
    services = _compose()["services"]
    assert urlsplit(settings.database_url).hostname in services
    assert settings.redis_url and urlsplit(settings.redis_url).hostname in services


def test_compose_publishes_the_container_ports() -> None:
    ports = _compose()["services"]["chatplane"]["ports"]
    inside = {int(str(p).rsplit(":", 1)[1]) for p in ports}
    assert inside == {Settings().http_port, Settings().grpc_port}


def test_compose_waits_longer_than_the_shutdown_grace() -> None:
    grace = _compose()["services"]["chatplane"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > Settings().shutdown_grace_seconds


def test_prometheus_scrapes_the_metrics_route_with_the_token() -> None:
    compose = _compose()
    scrape = yaml.safe_load(compose["configs"]["prometheus"]["content"])
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] in _routed_get_paths()
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in compose["services"] and int(port) == Settings().http_port
    # not on loopback, so it must send the token chatplane is given
    token = compose["services"]["chatplane"]["environment"]["CHATPLANE_METRICS_TOKEN"]
    assert job["authorization"]["credentials"] == token


def test_the_collector_receives_what_chatplane_is_told_to_export() -> None:
    compose = _compose()
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    (endpoint,) = re.findall(r"OTEL_EXPORTER_OTLP_ENDPOINT=(\S+)", text)
    host, port = urlsplit(endpoint).hostname, urlsplit(endpoint).port
    assert host in compose["services"]
    collector = yaml.safe_load(compose["configs"]["otel-collector"]["content"])
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert int(http.rsplit(":", 1)[1]) == port
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    # off unless the variable is given: an empty endpoint configures no tracing
    env = compose["services"]["chatplane"]["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
    assert not tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
