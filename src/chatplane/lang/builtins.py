"""The built-in functions of ABL expressions (NOW, COALESCE, ADD, MASK, ...), sandboxed."""

from __future__ import annotations

import json
import math
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_STR = 100_000
MAX_REGEX_INPUT = 10_000
MAX_PATTERN = 500


class EvalError(ValueError):
    """An expression could not be evaluated (unknown function, limit exceeded)."""


@dataclass(frozen=True, slots=True)
class Env:
    """What evaluation may observe beyond the scope: the clock, randomness, output limit."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    random_id: Callable[[int], str] = field(
        default=lambda n: "".join(
            secrets.choice(string.ascii_uppercase + string.digits) for _ in range(n)
        )
    )
    max_output: int = MAX_STR


def truthy(v: Any) -> bool:
    if v is None or v is False:
        return False
    if isinstance(v, int | float | str | list | dict):
        return bool(v)
    return True


def to_num(v: Any) -> int | float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return v
    if isinstance(v, str) and 0 < len(v) < 64:
        try:
            return int(v) if re.fullmatch(r"\s*-?\d+\s*", v) else float(v)
        except ValueError:
            return None
    return None


def to_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return str(v)
    s = json.dumps(v, separators=(",", ":"), default=lambda _: None)
    if len(s) > MAX_STR:
        raise EvalError("value too large to render")
    return s


def _s(v: Any) -> str:
    return to_str(v)


def _n(v: Any) -> float | int:
    n = to_num(v)
    if n is None:
        raise EvalError(f"expected a number, got {to_str(v)[:40]!r}")
    return n


def _cap(s: str) -> str:
    if len(s) > MAX_STR:
        raise EvalError(f"string result exceeds {MAX_STR} characters")
    return s


def _regex(pattern: Any, text: Any) -> tuple[re.Pattern[str], str] | None:
    p, t = _s(pattern), _s(text)
    if len(p) > MAX_PATTERN or len(t) > MAX_REGEX_INPUT:
        raise EvalError("regular expression or its input is too long")
    try:
        return re.compile(p), t
    except re.error:
        return None


def _mask(v: Any, pattern: Any = "last4", ch: Any = "*") -> str:
    s, p, c = _s(v), _s(pattern), (_s(ch) or "*")[:1]
    m = re.fullmatch(r"(last|first)(\d+)|(\d+)\*(\d+)", p)
    if m is None:
        return c * len(s)
    if m.group(1) == "last":
        k = int(m.group(2))
        return c * max(len(s) - k, 0) + s[-k:] if k else c * len(s)
    if m.group(1) == "first":
        k = int(m.group(2))
        return s[:k] + c * max(len(s) - k, 0)
    a, b = int(m.group(3)), int(m.group(4))
    if a + b >= len(s):
        return s
    return s[:a] + c * (len(s) - a - b) + (s[-b:] if b else "")


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def _currency(v: Any, cur: Any = "USD", _locale: Any = None) -> str:
    n = _n(v)
    code = _s(cur).upper() or "USD"
    sym = _SYMBOLS.get(code)
    digits = 0 if code == "JPY" else 2
    body = f"{abs(n):,.{digits}f}"
    sign = "-" if n < 0 else ""
    return f"{sign}{sym}{body}" if sym else f"{sign}{body} {code}"


def _date(v: Any, fmt: Any = "YYYY-MM-DD", _tz: Any = None) -> str:
    s = _s(v)
    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return s
    if d.tzinfo is not None:
        d = d.astimezone(UTC)
    out = _s(fmt)[:100]
    for tok, val in (
        ("YYYY", f"{d.year:04d}"),
        ("MM", f"{d.month:02d}"),
        ("DD", f"{d.day:02d}"),
        ("HH", f"{d.hour:02d}"),
        ("mm", f"{d.minute:02d}"),
        ("ss", f"{d.second:02d}"),
    ):
        out = out.replace(tok, val)
    return out


def _ordinal(v: Any) -> str:
    n = int(_n(v))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _round(v: Any, places: Any = 0) -> float | int:
    n, p = _n(v), int(_n(places))
    if not -10 <= p <= 15:
        raise EvalError("ROUND supports 0 to 15 decimals")
    r = round(n, p)
    return int(r) if p <= 0 and isinstance(r, float) and math.isfinite(r) else r


def _repeat(v: Any, count: Any) -> str:
    s, k = _s(v), int(_n(count))
    if k < 0 or len(s) * k > MAX_STR:
        raise EvalError("REPEAT result too long")
    return s * k


def _pad(v: Any, length: Any, ch: Any = " ", left: bool = True) -> str:
    s, k, c = _s(v), int(_n(length)), (_s(ch) or " ")[:1]
    if k > MAX_STR:
        raise EvalError("padding too long")
    return s.rjust(k, c) if left else s.ljust(k, c)


def _regex_replace(text: Any, pattern: Any, repl: Any) -> str:
    r = _regex(pattern, text)
    if r is None:
        return _s(text)
    return _cap(r[0].sub(re.sub(r"\$(\d)", r"\\\1", _s(repl)), r[1]))


def _regex_extract(text: Any, pattern: Any, group: Any = 0) -> str | None:
    r = _regex(pattern, text)
    if r is None:
        return None
    m = r[0].search(r[1])
    try:
        return m.group(int(_n(group))) if m else None
    except IndexError:
        return None


def _unique_id(env: Any, n: Any = 12) -> str:
    k = int(_n(n))
    if not 1 <= k <= 128:
        raise EvalError("UNIQUE_ID length must be 1 to 128")
    return str(env.random_id(k))


def _div(a: Any, b: Any) -> float | int | None:
    x, y = _n(a), _n(b)
    return None if y == 0 else x / y


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "COALESCE": lambda *a: next((x for x in a if x is not None and x != ""), None),
    "ADD": lambda a, b: _n(a) + _n(b),
    "SUB": lambda a, b: _n(a) - _n(b),
    "MUL": lambda a, b: _n(a) * _n(b),
    "DIV": _div,
    "ROUND": _round,
    "ABS": lambda a: abs(_n(a)),
    "MIN": lambda *a: min(_n(x) for x in a),
    "MAX": lambda *a: max(_n(x) for x in a),
    "UPPER": lambda s: _s(s).upper(),
    "LOWER": lambda s: _s(s).lower(),
    "TRIM": lambda s: _s(s).strip(),
    "LENGTH": lambda v: len(v) if isinstance(v, str | list | dict) else 0,
    "SUBSTRING": lambda s, a, b=None: _s(s)[int(_n(a)) : None if b is None else int(_n(b))],
    "REPLACE": lambda s, f, r: _cap(_s(s).replace(_s(f), _s(r))) if _s(f) else _s(s),
    "SPLIT": lambda s, d: _s(s).split(_s(d)) if _s(d) else list(_s(s)),
    "JOIN": lambda a, d: _cap(_s(d).join(_s(x) for x in a)) if isinstance(a, list) else _s(a),
    "CONCAT": lambda *a: _cap("".join(_s(x) for x in a)),
    "PAD_START": lambda s, k, c=" ": _pad(s, k, c, True),
    "PAD_END": lambda s, k, c=" ": _pad(s, k, c, False),
    "REPEAT": _repeat,
    "REGEX_REPLACE": _regex_replace,
    "REGEX_EXTRACT": _regex_extract,
    "MASK": _mask,
    "FORMAT_CURRENCY": _currency,
    "FORMAT_DATE": _date,
    "ORDINAL": _ordinal,
    "TO_NUMBER": to_num,
    "TO_STRING": _s,
}
ENV_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "NOW": lambda env: env.now().isoformat().replace("+00:00", "Z"),
    "NOW_MS": lambda env: int(env.now().timestamp() * 1000),
    "TODAY": lambda env: env.now().date().isoformat(),
    "UNIQUE_ID": _unique_id,
}
KNOWN_FUNCTIONS = frozenset(FUNCTIONS) | frozenset(ENV_FUNCTIONS)


def call(name: str, args: list[Any], env: Env) -> Any:
    fn = FUNCTIONS.get(name)
    try:
        if fn is not None:
            return fn(*args)
        efn = ENV_FUNCTIONS.get(name)
        if efn is not None:
            return efn(env, *args)
    except TypeError:
        raise EvalError(f"wrong number of arguments to {name}") from None
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, EvalError):
            raise
        raise EvalError(f"{name}: {exc}") from None
    raise EvalError(f"unknown function {name}")


def method(obj: Any, name: str, args: list[Any]) -> Any:
    """The few value methods conditions use: x.contains(y), startsWith, endsWith, matches."""
    low = name.lower()
    arg = args[0] if args else None
    if low == "contains":
        if isinstance(obj, list):
            return arg in obj
        return isinstance(obj, str) and _s(arg).lower() in obj.lower()
    if low in ("startswith", "endswith") and isinstance(obj, str):
        return obj.startswith(_s(arg)) if low == "startswith" else obj.endswith(_s(arg))
    if low == "matches" and isinstance(obj, str):
        r = _regex(arg, obj)
        return r is not None and r[0].search(r[1]) is not None
    if low in ("length", "size") and isinstance(obj, str | list | dict):
        return len(obj)
    if low in ("lower", "tolowercase") and isinstance(obj, str):
        return obj.lower()
    if low in ("upper", "touppercase") and isinstance(obj, str):
        return obj.upper()
    if low == "trim" and isinstance(obj, str):
        return obj.strip()
    return None
