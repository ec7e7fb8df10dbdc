"""The block tree both surface syntaxes parse into.

ABL and its YAML variant are both indentation trees of keyed entries, list items and bare
lines. The parser (ABL) and the YAML adapter build the same tree; lowering reads only it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

NodeKind = Literal["root", "entry", "item", "text"]


@dataclass(slots=True)
class Node:
    kind: NodeKind
    line: int
    col: int
    key: str = ""
    # Raw inline text after `KEY:` (quotes kept), a `|` block's text, or a bare line's text.
    value: str | None = None
    block: bool = False
    children: list[Node] = field(default_factory=list)

    @property
    def ukey(self) -> str:
        return self.key.upper()

    def entries(self) -> Iterator[Node]:
        return (c for c in self.children if c.kind == "entry")

    def items(self) -> Iterator[Node]:
        return (c for c in self.children if c.kind == "item")

    def get(self, *names: str) -> Node | None:
        """First child entry whose key matches one of `names`, case-insensitively."""
        wanted = {n.upper() for n in names}
        for c in self.children:
            if c.kind == "entry" and c.ukey in wanted:
                return c
        return None

    def head(self) -> Node | None:
        """For a list item: its first child (the text after the dash)."""
        return self.children[0] if self.children else None
