"""Compiling agent sources for storage: diagnostics -> violations, hashes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from chatplane.errors import InvalidFields
from chatplane.lang import IR_VERSION, CompileResult, Diagnostic

COMPILE_ERROR = "COMPILE_ERROR"


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def snapshot_hash(agents: Mapping[str, tuple[str, str]]) -> str:
    """SHA-256 over the IR version and every agent's (name, format, source hash)."""
    canonical = json.dumps(
        [IR_VERSION, sorted((name, fmt, h) for name, (fmt, h) in agents.items())],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def describe(d: Diagnostic) -> str:
    """A violation's description: `line L, col C: [CODE] message`."""
    return f"line {d.line}, col {d.col}: [{d.code}] {d.message}"


def compile_failed(results: Iterable[tuple[str, str, CompileResult]]) -> InvalidFields:
    """One error for every compile error of (field, agent name, result); the message
    counts them and quotes the first."""
    violations: list[tuple[str, str]] = []
    first = ""
    for field, name, result in results:
        for d in result.errors:
            text = describe(d)
            if field != "source":
                text = f"{name}: {text}"
            violations.append((field, text))
            first = first or text
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return InvalidFields(
        f"Agent source does not compile: {count} {noun}; {first}",
        violations,
        reason=COMPILE_ERROR,
        metadata={"errors": str(count)},
    )
