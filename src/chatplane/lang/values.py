"""Scalar and inline-collection values: `"text"`, `42`, `true`, `[a, b]`, `{k: v}`.

Also converts any block-tree node to plain JSON data (used to carry sections the runtime does
not execute yet, so nothing is silently dropped).
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatplane.lang.ast import Node

Json = Any

_NUM = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def unquote(raw: str) -> str:
    s = raw.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        try:
            out = json.loads(s)
            return out if isinstance(out, str) else s[1:-1]
        except ValueError:
            return s[1:-1]
    if len(s) >= 2 and s[0] == s[-1] == "'":
        return s[1:-1].replace("''", "'")
    return s


def is_quoted(raw: str) -> bool:
    s = raw.strip()
    return len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'"


def scalar(raw: str) -> Json:
    s = raw.strip()
    if not s:
        return None
    if is_quoted(s):
        return unquote(s)
    if s[0] in "[{":
        val, end = _flow(s, 0)
        if s[end:].strip() == "":
            return val
        return s
    low = s.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("null", "~", "none"):
        return None
    if _NUM.fullmatch(s):
        return float(s) if any(c in s for c in ".eE") else int(s)
    return s


def _skip(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t\n":
        i += 1
    return i


def _flow(s: str, i: int) -> tuple[Json, int]:
    """Parse one inline value at s[i]; tolerant: bad input yields a string."""
    i = _skip(s, i)
    if i >= len(s):
        return None, i
    ch = s[i]
    if ch == "[":
        items: list[Json] = []
        i = _skip(s, i + 1)
        while i < len(s) and s[i] != "]":
            val, i = _flow(s, i)
            items.append(val)
            i = _skip(s, i)
            if i < len(s) and s[i] == ",":
                i = _skip(s, i + 1)
            elif i < len(s) and s[i] != "]":
                i += 1
        return items, min(i + 1, len(s))
    if ch == "{":
        obj: dict[str, Json] = {}
        i = _skip(s, i + 1)
        while i < len(s) and s[i] != "}":
            key, i = _word(s, i, ":,}")
            i = _skip(s, i)
            val2: Json = None
            if i < len(s) and s[i] == ":":
                val2, i = _flow(s, i + 1)
            obj[str(key)] = val2
            i = _skip(s, i)
            if i < len(s) and s[i] == ",":
                i = _skip(s, i + 1)
            elif i < len(s) and s[i] != "}":
                i += 1
        return obj, min(i + 1, len(s))
    word, i = _word(s, i, ",]}")
    return (scalar(word) if isinstance(word, str) else word), i


def _word(s: str, i: int, stops: str) -> tuple[str, int]:
    i = _skip(s, i)
    if i < len(s) and s[i] in "\"'":
        q = s[i]
        j = i + 1
        while j < len(s) and s[j] != q:
            j += 2 if s[j] == "\\" and q == '"' else 1
        raw = s[i : j + 1]
        return json.dumps(unquote(raw)) if q == "'" else raw, j + 1
    j = i
    depth = 0
    while j < len(s):
        c = s[j]
        if c in "([":
            depth += 1
        elif c in ")]" and depth:
            depth -= 1
        elif depth == 0 and c in stops:
            break
        j += 1
    return s[i:j].strip(), j


def split_list(raw: str) -> list[str]:
    """Raw elements of an inline `[a, "b", f(x, y)]` list, quotes kept."""
    s = raw.strip()
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    parts: list[str] = []
    depth = 0
    quote = ""
    cur = ""
    for ch in s:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def node_data(node: Node, depth: int = 0) -> Json:
    """Plain JSON data of a node's value and children (entries -> dict, items -> list)."""
    if depth > 100:
        return None
    if not node.children:
        if node.value is None:
            return None
        return node.value if node.block else scalar(node.value)
    entries = [c for c in node.children if c.kind == "entry"]
    items = [c for c in node.children if c.kind == "item"]
    texts = [c for c in node.children if c.kind == "text"]
    if node.kind == "item" and not items and len(texts) == 1 and not entries:
        return scalar(texts[0].value or "")
    if items and not entries and not texts:
        return [node_data(c, depth + 1) for c in items]
    out: dict[str, Json] = {}
    if node.value is not None:
        out["_value"] = node.value if node.block else scalar(node.value)
    for c in entries:
        out[c.key] = node_data(c, depth + 1)
    if items:
        out["_items"] = [node_data(c, depth + 1) for c in items]
    if texts:
        out["_lines"] = [c.value for c in texts]
    return out
