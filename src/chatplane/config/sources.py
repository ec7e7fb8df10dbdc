"""Where the configuration comes from: the environment (pydantic-settings' environment
source over a given mapping, and its validation errors as one clear line per variable)
and Envoy's files (the repository's, or the installed wheel's package data).
`chatplane.config` re-exports what the rest of the code uses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode
from pydantic_settings.sources.utils import parse_env_vars


def _lowered(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(h.strip() for h in value.split(",") if h.strip())
    return value


def _switch(value: Any) -> Any:
    # As documented: only `off`, `0` and `false` turn it off (any other value: on).
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "off", "false")
    return value


# Field types of Settings whose variables read in their own way.
AtLeastOne = Annotated[int, AfterValidator(lambda v: max(1, v))]
NotNegative = Annotated[int, AfterValidator(lambda v: max(0, v))]
Transport = Annotated[Literal["lean", "sdk"], BeforeValidator(_lowered)]
LogFormat = Annotated[Literal["json", "text"], BeforeValidator(_lowered)]
# Empty: uvloop when importable (cli.install_event_loop).
EventLoop = Annotated[Literal["", "asyncio", "uvloop"], BeforeValidator(_lowered)]
# A comma-separated list (NoDecode: not the JSON pydantic-settings expects of a tuple).
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
Switch = Annotated[bool, BeforeValidator(_switch)]


class ConfigError(ValueError):
    """A variable whose value does not parse; the message names it."""


class Environment(EnvSettingsSource):
    """The settings class's variables as found in `environ` (os.environ or a test's own):
    the names are the fields' validation aliases, and the model's configuration applies
    (exact names, empty values skipped)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._given = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


_PLAIN = {
    "int_parsing": "must be an integer",
    "float_parsing": "must be a number",
    "bool_parsing": "must be on or off",
}


def explain(exc: ValidationError) -> ConfigError:
    """One line per bad variable, e.g. `CHATPLANE_HTTP_PORT must be an integer, got 'x'`."""
    lines = []
    for error in exc.errors(include_url=False):
        if error["type"] == "value_error":  # a Settings validator's own message: whole
            lines.append(error["msg"].removeprefix("Value error, "))
            continue
        name = ".".join(str(part) for part in error["loc"]) or "configuration"
        what = _PLAIN.get(error["type"]) or error["msg"].replace("Input should be", "must be")
        lines.append(f"{name} {what}, got {error['input']!r}")
    return ConfigError("; ".join(lines))


REPO_ROOT = Path(__file__).resolve().parents[3]

GATEWAY_FILES = "gateway_files"
"""Where an installed wheel keeps Envoy's files (package data, `chatplane/gateway_files/`;
pyproject.toml force-includes them from `gen/` and `envoy/`)."""


def gateway_file(name: str, source: Path) -> Path:
    """A file Envoy needs: `source` (the repository's own file) in a checkout or an
    editable install, else the packaged copy of an installed wheel. The repository's file
    wins: an editable install also holds copies, made at install time, which go stale
    as soon as `make gen` or an edit changes the source."""
    if source.is_file():
        return source
    packaged = resources.files("chatplane") / GATEWAY_FILES / name
    if packaged.is_file():
        return Path(str(packaged))
    return source


def descriptor_path() -> Path:
    """The descriptor set `make gen` builds, which Envoy's transcoder loads."""
    override = os.environ.get("CHATPLANE_DESCRIPTOR")
    if override:
        return Path(override)
    return gateway_file("descriptor.binpb", REPO_ROOT / "gen" / "descriptor.binpb")
