"""GATHER without a model: find typed values in a user's message, coerce and validate them.

A field gets a value when the message is, or contains, exactly one value of the field's type
(email, phone, number/integer/float/currency, boolean yes/no, date, datetime, enum option,
pattern — a `validate: pattern(...)` makes a string field a pattern field). Several fields are
filled from one message when their values do not overlap; overlapping claims (say a phone
number that is also an integer) are ambiguous and left to the model. Free-text fields
(string/text/location without pattern or options) are never filled here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from chatplane.lang import Env, EvalError, evaluate, ir

MAX_INPUT = 10_000
FREE_TEXT_TYPES = frozenset({"string", "text", "free_text", "location", "any"})
NUMBER_TYPES = frozenset({"number", "float", "currency", "decimal"})

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{5,18}\d(?!\w)")
_INT = re.compile(
    r"(?<![\w.,-])-?\d{1,3}(?:,\d{3})+(?![\w.,]\d|\w)|(?<![\w.,-])-?\d+(?![\w]|[.,]\d)"
)
_NUM = re.compile(r"(?<![\w.,-])[-$€£]?\$?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|[.,]\d)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_ISO_DT = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?")
_MONTHS = {
    m: i + 1
    for i, ms in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
    for m in (ms,)
}
_TEXT_DATE = re.compile(
    r"\b(?:(\d{1,2})\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})|([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))\b"
)
_RELATIVE = {"today": 0, "tomorrow": 1, "yesterday": -1}
YES = frozenset(
    [
        "yes",
        "y",
        "yeah",
        "yep",
        "yup",
        "sure",
        "correct",
        "true",
        "ok",
        "okay",
        "confirm",
        "confirmed",
        "affirmative",
        "right",
    ]
)
NO = frozenset(["no", "n", "nope", "nah", "false", "incorrect", "cancel", "negative", "wrong"])
_WORD = re.compile(r"[A-Za-z']+")


@dataclass(frozen=True, slots=True)
class Found:
    value: Any
    start: int
    end: int


def is_free_text(f: ir.GatherField) -> bool:
    return (
        f.type.lower() in FREE_TEXT_TYPES
        and not f.options
        and not (f.validate and f.validate.kind in ("pattern", "enum", "email"))
    )


def options_of(f: ir.GatherField) -> tuple[str, ...]:
    if f.options:
        return f.options
    if f.validate is not None and f.validate.kind == "enum":
        return tuple(str(a) for a in f.validate.args)
    return ()


def find(f: ir.GatherField, message: str, today: date) -> list[Found]:
    """Every value of the field's type in the message (distinct values, in order)."""
    text = message[:MAX_INPUT]
    t = f.type.lower()
    out: list[Found] = []
    opts = options_of(f)
    if opts:
        for o in opts:
            m = re.search(r"(?<!\w)" + re.escape(o) + r"(?!\w)", text, re.I)
            if m:
                out.append(Found(o, m.start(), m.end()))
    elif t == "email" or (f.validate is not None and f.validate.kind == "email"):
        out = [Found(m.group(0), m.start(), m.end()) for m in _EMAIL.finditer(text)]
    elif f.validate is not None and f.validate.kind == "pattern" and f.validate.pattern:
        out = _pattern(f.validate.pattern, text)
    elif t == "pattern":
        pat = f.extra.get("pattern") or f.extra.get("extraction_pattern")
        out = _pattern(str(pat), text) if pat else []
    elif t == "phone":
        for m in _PHONE.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if 7 <= len(digits) <= 15:
                out.append(Found(m.group(0).strip(), m.start(), m.end()))
    elif t == "integer":
        out = [
            Found(int(m.group(0).replace(",", "")), m.start(), m.end()) for m in _INT.finditer(text)
        ]
    elif t in NUMBER_TYPES:
        for m in _NUM.finditer(text):
            raw = m.group(0).lstrip("$€£").replace(",", "")
            try:
                v: float | int = float(raw) if "." in raw else int(raw)
            except ValueError:
                continue
            out.append(Found(v, m.start(), m.end()))
    elif t == "boolean":
        words = [(w.group(0).lower(), w.start(), w.end()) for w in _WORD.finditer(text)]
        yes = [w for w in words if w[0] in YES]
        no = [w for w in words if w[0] in NO]
        if yes and not no:
            out = [Found(True, yes[0][1], yes[0][2])]
        elif no and not yes:
            out = [Found(False, no[0][1], no[0][2])]
    elif t == "date":
        out = _dates(text, today)
    elif t == "datetime":
        out = [Found(m.group(0), m.start(), m.end()) for m in _ISO_DT.finditer(text)]
        if not out:
            out = _dates(text, today)
    seen: set[str] = set()
    uniq: list[Found] = []
    for fd in out:
        key = repr(fd.value).lower()
        if key not in seen:
            seen.add(key)
            uniq.append(fd)
    return uniq


def _pattern(pattern: str, text: str) -> list[Found]:
    try:
        rx = re.compile(pattern[:500])
    except re.error:
        return []
    whole = text.strip()
    if rx.search(whole) and len(whole) <= 200:
        return [Found(whole, 0, len(text))]
    out: list[Found] = []
    for m in re.finditer(r"\S+", text):
        tok = m.group(0).strip(".,;:!?()[]\"'")
        if tok and rx.search(tok):
            out.append(Found(tok, m.start(), m.end()))
    return out


def _dates(text: str, today: date) -> list[Found]:
    out: list[Found] = []
    for m in _ISO_DATE.finditer(text):
        _add_date(out, int(m.group(1)), int(m.group(2)), int(m.group(3)), m)
    for m in _US_DATE.finditer(text):
        _add_date(out, int(m.group(3)), int(m.group(1)), int(m.group(2)), m)
    for m in _TEXT_DATE.finditer(text):
        if m.group(1):
            day, mon, year = m.group(1), m.group(2), m.group(3)
        else:
            mon, day, year = m.group(4), m.group(5), m.group(6)
        month = _MONTHS.get(mon[:3].lower())
        if month:
            _add_date(out, int(year), month, int(day), m)
    for w in _WORD.finditer(text):
        delta = _RELATIVE.get(w.group(0).lower())
        if delta is not None:
            d = today + timedelta(days=delta)
            out.append(Found(d.isoformat(), w.start(), w.end()))
    return out


def _add_date(out: list[Found], y: int, mo: int, d: int, m: re.Match[str]) -> None:
    try:
        out.append(Found(date(y, mo, d).isoformat(), m.start(), m.end()))
    except ValueError:
        return


def extract_typed(
    fields: Sequence[ir.GatherField], message: str, today: date
) -> tuple[dict[str, Any], list[str]]:
    """Values found without a model, and the names of fields left ambiguous (several values,
    or a value another field also claims)."""
    claims: dict[str, Found] = {}
    ambiguous: list[str] = []
    for f in fields:
        if is_free_text(f):
            continue
        found = find(f, message, today)
        if len(found) == 1:
            claims[f.name] = found[0]
        elif len(found) > 1:
            ambiguous.append(f.name)
    names = list(claims)
    clash: set[str] = set()
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = claims[a], claims[b]
            if x.start < y.end and y.start < x.end:
                clash.update((a, b))
    ambiguous.extend(n for n in names if n in clash)
    return {n: claims[n].value for n in names if n not in clash}, ambiguous


# ---- coercion and validation --------------------------------------------------------------


def coerce(f: ir.GatherField, value: Any, today: date) -> tuple[bool, Any]:
    """A value from outside (testContext, the model) as the field's type."""
    if value is None:
        return False, None
    t = f.type.lower()
    opts = options_of(f)
    if opts:
        for o in opts:
            if str(value).strip().lower() == o.lower():
                return True, o
        return False, value
    if t == "boolean":
        if isinstance(value, bool):
            return True, value
        s = str(value).strip().lower()
        if s in YES:
            return True, True
        if s in NO:
            return True, False
        return False, value
    if t == "integer" or t in NUMBER_TYPES:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int | float):
            if t == "integer" and isinstance(value, float):
                return (value.is_integer(), int(value) if value.is_integer() else value)
            return True, value
        found = find(f, str(value), today)
        return (True, found[0].value) if len(found) == 1 else (False, value)
    if t in ("email", "phone", "date", "datetime"):
        found = find(f, str(value), today)
        return (True, found[0].value) if len(found) == 1 else (False, value)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return True, str(value).strip()
    return True, value


def validate(f: ir.GatherField, value: Any, scope: Mapping[str, Any], env: Env) -> str | None:
    """None when the value is acceptable, else a short reason."""
    v = f.validate
    if v is None:
        return None
    try:
        if v.kind in ("min", "max") and v.args:
            n, lim = _num(value), _num(v.args[0])
            if n is None or lim is None:
                return f"{f.name} must be a number"
            ok = n >= lim if v.kind == "min" else n <= lim
            return (
                None
                if ok
                else f"{f.name} must be {'at least' if v.kind == 'min' else 'at most'} {lim}"
            )
        if v.kind == "enum":
            allowed = [str(a).lower() for a in v.args]
            return None if str(value).lower() in allowed else f"{f.name} must be one of {v.args}"
        if v.kind == "email":
            return None if _EMAIL.fullmatch(str(value)) else f"{f.name} must be an email address"
        if v.kind == "pattern" and v.pattern:
            s = str(value)[:MAX_INPUT]
            return None if re.search(v.pattern, s) else f"{f.name} has the wrong format"
        if v.kind == "expr" and v.expr is not None:
            inner = dict(scope)
            inner.update({"value": value, f.name: value})
            ok2 = evaluate(v.expr, inner, env)
            return (
                None
                if ok2 is True or (ok2 not in (None, False, 0, ""))
                else (f"{f.name} is not valid")
            )
    except (EvalError, re.error, RecursionError):
        return f"{f.name} could not be validated"
    return None


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return None


def json_type(f: ir.GatherField) -> dict[str, Any]:
    """The JSON Schema of one field, for the model's extraction tool."""
    t = f.type.lower()
    if options_of(f):
        return {"type": "string", "enum": list(options_of(f))}
    if t == "integer":
        return {"type": "integer"}
    if t in NUMBER_TYPES:
        return {"type": "number"}
    if t == "boolean":
        return {"type": "boolean"}
    return {"type": "string", "description": f"a {t}" if t not in FREE_TEXT_TYPES else t}


def today_of(now: Callable[[], datetime]) -> date:
    return now().date()
