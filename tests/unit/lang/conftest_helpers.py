"""Shared helpers for the lang tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from chatplane.lang import CompileResult, compile_source

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "agents"
CASES = Path(__file__).parent / "cases"
HEAD = 'AGENT: T\nGOAL: "g"\n'


def src(body: str) -> str:
    """A minimal agent (AGENT: T, GOAL) followed by `body`, dedented."""
    return HEAD + textwrap.dedent(body)


def codes(result: CompileResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def compile_ok(text: str, **kw: object) -> CompileResult:
    r = compile_source(text, **kw)  # type: ignore[arg-type]
    assert r.ok, [d.format() for d in r.diagnostics]
    return r
