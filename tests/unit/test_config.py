"""Settings read from the environment by pydantic-settings keep the hand parser's rules:
an empty value counts as unset, errors name the variable, the environment is read only
by `from_env` (once, at start-up), and the special cases (milliseconds, lists, switches,
clamps, the derived database URL) read as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatplane.config import ConfigError, Settings


def test_defaults_and_empty_values_count_as_unset() -> None:
    names = [f.validation_alias for f in Settings.model_fields.values()]
    empty = Settings.from_env(dict.fromkeys((n for n in names if isinstance(n, str)), ""))
    assert empty == Settings.from_env({})
    assert empty.http_port == 8080 and empty.anthropic_transport == "lean"
    assert empty.bootstrap_api_key is None and empty.prices_file is None
    assert empty.database_url == f"sqlite+aiosqlite:///{Path('var/chatplane.db').resolve()}"


def test_from_env_reads_the_process_environment_and_the_constructor_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATPLANE_HTTP_PORT", "9123")
    monkeypatch.setenv("CHATPLANE_ANTHROPIC_TRANSPORT", "sdk")
    assert Settings.from_env().http_port == 9123
    assert Settings.from_env().anthropic_transport == "sdk"
    assert Settings().http_port == 8080  # values given (tests), never the environment
    assert Settings(http_port=0).http_port == 0


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("CHATPLANE_HTTP_PORT", "eighty", "must be an integer, got 'eighty'"),
        ("CHATPLANE_SHUTDOWN_GRACE_SECONDS", "soon", "must be a number, got 'soon'"),
        ("CHATPLANE_LOCAL_TOKEN_DELAY_MS", "1.5", "must be an integer, got '1.5'"),
        ("CHATPLANE_ANTHROPIC_TRANSPORT", "fast", "must be 'lean' or 'sdk', got 'fast'"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    assert str(caught.value) == f"{name} {message}"
    assert "\n" not in str(caught.value)  # one line, no pydantic report
    assert isinstance(caught.value, ValueError)


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"CHATPLANE_WORKERS": "many", "CHATPLANE_TURN_QUEUE": "x"})
    assert "CHATPLANE_WORKERS" in str(caught.value) and "CHATPLANE_TURN_QUEUE" in str(caught.value)


def test_values_read_their_own_way() -> None:
    s = Settings.from_env(
        {
            "CHATPLANE_LOCAL_TOKEN_DELAY_MS": " 25 ",
            "CHATPLANE_TOOL_ALLOWED_HOSTS": " a.example , ,b.example:81,",
            "CHATPLANE_WORKERS": "0",
            "CHATPLANE_JOB_CONCURRENCY": "-2",
            "CHATPLANE_MAX_INFLIGHT": "-1",
            "CHATPLANE_LOG_FORMAT": " TEXT ",
            "CHATPLANE_ANTHROPIC_TRANSPORT": " SDK ",
            "CHATPLANE_DATABASE_URL": "postgresql://u:p@db:5432/x",
            "CHATPLANE_PRICES_FILE": "/etc/prices.json",
        }
    )
    assert s.local_token_delay == 0.025  # milliseconds in, seconds out
    assert s.tool_allowed_hosts == ("a.example", "b.example:81")
    assert (s.workers, s.job_concurrency, s.max_inflight) == (1, 1, 0)
    assert (s.log_format, s.anthropic_transport) == ("text", "sdk")
    assert s.database_url == "postgresql+asyncpg://u:p@db:5432/x"
    assert s.prices_file == Path("/etc/prices.json")


@pytest.mark.parametrize(
    ("raw", "kept"), [("off", False), ("0", False), ("FALSE", False), ("on", True), ("yes", True)]
)
def test_llm_payloads_switch(raw: str, kept: bool) -> None:
    assert Settings.from_env({"CHATPLANE_LLM_PAYLOADS": raw}).llm_payloads is kept


def test_the_default_database_follows_the_data_directory(tmp_path: Path) -> None:
    s = Settings.from_env({"CHATPLANE_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'chatplane.db'}"
    given = Settings(data_dir=tmp_path, database_url="sqlite:///elsewhere.db")
    assert given.database_url == "sqlite+aiosqlite:///elsewhere.db"


def test_settings_are_frozen_and_strict_about_names() -> None:
    s = Settings()
    with pytest.raises(ValueError, match="frozen"):
        s.http_port = 1
    with pytest.raises(ValueError, match="http_prot"):
        Settings(http_prot=1)  # type: ignore[call-arg]
    # Variables that are not settings are ignored by from_env (the environment is shared).
    assert Settings.from_env({"HOME": "/root", "CHATPLANE_URL": "http://x"}) == Settings()


def test_the_cli_names_a_bad_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatplane.cli import main

    monkeypatch.setenv("CHATPLANE_HTTP_PORT", "eighty")
    assert main(["keys", "list"]) == 2
    err = capsys.readouterr().err
    assert err == "chatplane: CHATPLANE_HTTP_PORT must be an integer, got 'eighty'\n"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CHATPLANE_LOG_FORMAT", "xml", "CHATPLANE_LOG_FORMAT must be 'json' or 'text', got 'xml'"),
        ("CHATPLANE_EVENT_LOOP", "trio", "CHATPLANE_EVENT_LOOP must be '', 'asyncio' or 'uvloop'"),
    ],
)
def test_choices_are_checked_with_the_other_variables(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({variable: value})
    valid = "TEXT" if variable.endswith("FORMAT") else "ASYNCIO"  # trimmed and lower-cased
    assert getattr(Settings.from_env({variable: valid}), variable[10:].lower()) == valid.lower()
