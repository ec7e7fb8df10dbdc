"""Source positions and diagnostics shared by every stage of the front end."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# Stable diagnostic codes. The text is the short title; each diagnostic carries its own message.
CODES: dict[str, str] = {
    "ABL0001": "empty source or no recognisable section",
    "ABL0002": "mixed keyword case (ABL and YAML syntax in one file)",
    "ABL0003": "YAML syntax error",
    "ABL0101": "inconsistent indentation",
    "ABL0102": "malformed value (unterminated string or bracket)",
    "ABL0103": "unexpected line",
    "ABL0104": "duplicate key in a block",
    "ABL0105": "unknown section or key",
    "ABL0106": "missing required section",
    "ABL0107": "deprecated construct",
    "ABL0108": "invalid value",
    "ABL0109": "malformed tool signature",
    "ABL0110": "flow step without REASONING",
    "ABL0201": "expression syntax error",
    "ABL0202": "template syntax error",
    "ABL0203": "condition is free text, not an expression",
    "ABL0204": "unknown function",
    "ABL0301": "reference to an undefined step",
    "ABL0302": "unreachable step",
    "ABL0303": "variable read but never written",
    "ABL0304": "tool used but not declared",
    "ABL0305": "CALL arguments do not match the tool signature",
    "ABL0306": "HANDOFF to an agent the project does not have",
    "ABL0307": "duplicate name",
    "ABL0308": "invalid ON_ERROR handler",
    "ABL0401": "not supported yet",
}


@dataclass(frozen=True, slots=True)
class Span:
    """1-based line and column of a construct in the source text."""

    line: int
    col: int = 1


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    line: int
    col: int = 1

    def format(self, filename: str = "<source>") -> str:
        where = f"{filename}:{self.line}:{self.col}"
        return f"{where}: {self.severity.value}: {self.message} [{self.code}]"


class Sink:
    """Collects diagnostics; stages report into it and never raise on bad input."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: str, message: str, line: int, col: int = 1) -> None:
        self.items.append(Diagnostic(code, Severity.ERROR, message, max(line, 1), max(col, 1)))

    def warning(self, code: str, message: str, line: int, col: int = 1) -> None:
        self.items.append(Diagnostic(code, Severity.WARNING, message, max(line, 1), max(col, 1)))

    def unsupported(self, what: str, line: int, col: int = 1) -> None:
        self.warning("ABL0401", f"not supported yet: {what}, line {line}", line, col)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> tuple[Diagnostic, ...]:
        return tuple(sorted(self.items, key=lambda d: (d.line, d.col, d.code)))
