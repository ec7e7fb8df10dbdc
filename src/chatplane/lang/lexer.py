"""Line lexer for ABL: physical lines to logical lines (entries, items, bare text).

Handles indentation, `#` comment lines, trailing comments, `- ` list markers, `|`/`>` block
scalars and inline `[...]`/`{...}` values that continue over several lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatplane.lang.source import Sink

# `USE BEHAVIOR_PROFILE:` (with a space) is the one keyword the reference spells with a blank.
_KEY = re.compile(
    r"""([A-Za-z_$@][\w.\-@$]*\??|(?i:USE[ \t]+BEHAVIOR_PROFILE)|"[^"\n]*"|'[^'\n]*')"""
    r"""[ \t]*:(?=[ \t]|$)"""
)
_BLOCK = {"|", "|-", "|+", ">", ">-", ">+"}
_USE_PROFILE = re.compile(r"(?i:USE[ \t]+BEHAVIOR_PROFILE)")


def canonical_key(key: str) -> str:
    """`USE BEHAVIOR_PROFILE` (any blanks) is spelled `USE_BEHAVIOR_PROFILE`, as its
    other spelling; every other key as written."""
    return "_".join(key.split()) if _USE_PROFILE.fullmatch(key) else key


@dataclass(slots=True)
class Logical:
    kind: str  # "entry" | "item" | "text"
    line: int
    col: int  # 1-based column of the first character
    key: str = ""
    value: str | None = None
    block: bool = False


def _indent(raw: str) -> int:
    n = 0
    for ch in raw:
        if ch == " ":
            n += 1
        elif ch == "\t":
            n += 2  # tabs are accepted; one tab counts as two spaces
        else:
            break
    return n


def strip_comment(text: str) -> str:
    """Drop a trailing ` # comment` outside quotes; `{{#if}}` and `a#b` are kept."""
    quote = ""
    prev = " "
    for i, ch in enumerate(text):
        if quote:
            if ch == "\\":
                prev = ""
                continue
            if ch == quote and prev != "\\":
                quote = ""
        elif ch in "\"'" and (prev in " \t:[{,(=" or i == 0):
            quote = ch
        elif ch == "#" and prev in " \t":
            return text[:i].rstrip()
        prev = ch
    return text


def _balance(text: str) -> int:
    depth = 0
    quote = ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def _unterminated(text: str) -> bool:
    t = text.strip()
    return len(t) >= 1 and t[0] in "\"'" and (len(t) == 1 or t[-1] != t[0])


def lex(text: str, sink: Sink) -> list[Logical]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[Logical] = []
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip()
        lineno = i + 1
        i += 1
        stripped = raw.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        col = _indent(raw)
        body = strip_comment(stripped)
        if not body:
            continue
        # `- ` markers become item nodes; the rest of the line sits two columns further in.
        while body == "-" or body.startswith(("- ", "-\t")):
            out.append(Logical("item", lineno, col + 1))
            rest = body[1:]
            pad = len(rest) - len(rest.lstrip(" \t"))
            col += 1 + pad
            body = rest.lstrip(" \t")
        if not body:
            continue
        m = _KEY.match(body)
        if m is None:
            out.append(Logical("text", lineno, col + 1, value=body))
            continue
        key = m.group(1)
        key = key[1:-1] if key[0] in "\"'" else canonical_key(key)
        value = body[m.end() :].strip()
        if value in _BLOCK:
            node = Logical("entry", lineno, col + 1, key)
            i = _read_block(lines, i, owner_col=col, style=value, out=out, node=node)
            continue
        if value and _balance(value) > 0:
            # An inline list/map that continues on the following lines.
            while i < len(lines) and _balance(value) > 0:
                nxt = strip_comment(lines[i].strip())
                value = f"{value} {nxt}" if nxt else value
                i += 1
            if _balance(value) != 0:
                sink.error(
                    "ABL0102", f"unclosed '[' or '{{' in the value of {key}", lineno, col + 1
                )
        elif value and _unterminated(value):
            sink.error(
                "ABL0102",
                f"unterminated string in the value of {key}; add the closing quote",
                lineno,
                col + m.end() + 1,
            )
        out.append(Logical("entry", lineno, col + 1, key, value or None))
    return out


def _read_block(
    lines: list[str], i: int, *, owner_col: int, style: str, out: list[Logical], node: Logical
) -> int:
    """Collect a `|` or `>` block: following lines indented deeper than the owner."""
    body: list[str] = []
    while i < len(lines):
        raw = lines[i].rstrip()
        if raw.strip() and _indent(raw) <= owner_col:
            break
        body.append(raw)
        i += 1
    while body and not body[-1].strip():
        body.pop()
    indents = [_indent(b) for b in body if b.strip()]
    cut = min(indents) if indents else 0
    texts = [b.expandtabs(2)[cut:] if b.strip() else "" for b in body]
    if style.startswith(">"):
        paras: list[str] = []
        cur: list[str] = []
        for t in texts:
            if t:
                cur.append(t.strip())
            else:
                paras.append(" ".join(cur))
                cur = []
        paras.append(" ".join(cur))
        joined = "\n".join(paras)
    else:
        joined = "\n".join(texts)
    if joined and not style.endswith("-"):
        joined += "\n"
    node.value = joined
    node.block = True
    out.append(node)
    return i
