"""docs/configuration.md is generated from the Settings fields' declarations and stays
complete: every variable the source reads is in the table, and every setting reads its own."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from chatplane import config
from chatplane.config import Settings, docs

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "chatplane"
PREFIXED = re.compile(r"""["']((?:CHATPLANE|ANTHROPIC|OTEL|PROMETHEUS)_[A-Z0-9_]+)["']""")
READS = re.compile(
    r"""(?:\benv\.get|environ\.get|os\.getenv|\b_int)\(\s*(?:env,\s*)?["']([A-Z][A-Z0-9_]*)["']"""
    r"""|environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)


def _sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(SRC.rglob("*.py"))}


def _documented() -> set[str]:
    return {v.name for v in config.reference()}


def test_docs_configuration_md_is_current() -> None:
    on_disk = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert on_disk == config.reference_markdown(), (
        "docs/configuration.md is stale: run "
        "`.venv/bin/python -m chatplane.config > docs/configuration.md`"
    )


def test_every_variable_the_source_reads_is_documented() -> None:
    named: dict[str, str] = {}
    for path, text in _sources().items():
        for match in PREFIXED.finditer(text):
            named.setdefault(match.group(1), str(path.relative_to(ROOT)))
        for match in READS.finditer(text):
            named.setdefault(match.group(1) or match.group(2), str(path.relative_to(ROOT)))
    assert len(named) > 30, "the scan found too little: has the source layout changed?"
    missing = {name: where for name, where in named.items() if name not in _documented()}
    assert not missing, (
        f"read but not in the configuration reference: {missing}; declare it with "
        "_setting(...) on Settings or add it to config.docs.OTHER_VARIABLES"
    )


def test_the_scan_sees_every_way_of_reading() -> None:
    sample = """
        a = env.get("CHATPLANE_A")
        b = _int(env, "CHATPLANE_B", 1)
        c = os.environ.get("HOME_C")
        d = os.environ["D_VAR"]
        e = os.getenv('E_VAR')
    """
    found = {m.group(1) or m.group(2) for m in READS.finditer(sample)}
    assert found == {"CHATPLANE_A", "CHATPLANE_B", "HOME_C", "D_VAR", "E_VAR"}


def test_every_variable_is_documented_once() -> None:
    names = [v.name for v in config.reference()]
    assert len(names) == len(set(names))


def _choices(annotation: object) -> tuple[str, ...]:
    """The values of a Literal field (inside Annotated), else ()."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()


def _sample(default: object, annotation: object = None) -> str:
    if default is None and int in typing.get_args(annotation):  # an optional number
        return "7"
    if choices := [c for c in _choices(annotation) if c and c != default]:
        return str(choices[0])
    if isinstance(default, bool):
        return "off" if default else "on"
    if isinstance(default, int | float):
        return "7"
    if isinstance(default, tuple):
        return "a.example, b.example:81"
    return "/somewhere/else"


# The default database lives in the data directory.
DERIVED = {"data_dir": {"database_url"}}


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_each_setting_reads_its_documented_variable(name: str) -> None:
    """Setting the variable the declaration names changes that field (and no other): the
    table cannot name a variable `from_env` does not read for that field."""
    field = Settings.model_fields[name]
    env = field.validation_alias
    assert isinstance(env, str)
    base = Settings.from_env({})
    changed = Settings.from_env({env: _sample(field.default, field.annotation)})
    differs = {g for g in Settings.model_fields if getattr(base, g) != getattr(changed, g)}
    assert differs == {name} | DERIVED.get(name, set()), f"{env} changed {differs}"


def test_other_variables_are_read_somewhere() -> None:
    texts = "\n".join(_sources().values())
    for var in docs.OTHER_VARIABLES:
        # once in OTHER_VARIABLES, at least once where it is read
        assert texts.count(f'"{var.name}"') >= 2, f"{var.name} is documented but never read"


def test_readme_keeps_a_short_table_that_links_to_the_reference() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert "docs/configuration.md" in section
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE))
    assert listed, "the README's configuration table is gone"
    assert listed <= _documented(), listed - _documented()
    assert len(listed) <= 12, "keep the README's table to what a newcomer needs"
