"""The incremental SSE parser: frames split anywhere, any line ending."""

from __future__ import annotations

import typing

import pytest

from chatplane.kit.sse import SSEParser

SSE_FRAMES = (
    ": a comment\n"
    "event: message_start\n"
    'data: {"type": "message_start",\n'
    'data:  "n": 1}\n'
    "\n"
    "event: ping\n"
    "\n"
    "data: no-space\n"
    "id: 7\n"
    "retry: 10\n"
    "\n"
    "event: unterminated\n"
    "data: {}\n"
)
SSE_EXPECTED = [
    (b"message_start", b'{"type": "message_start",\n "n": 1}'),
    (b"ping", b""),
    (b"", b"no-space"),
]


def parse_in_pieces(body: bytes, cuts: typing.Iterable[int]) -> list[tuple[bytes, bytes]]:
    parser = SSEParser()
    frames: list[tuple[bytes, bytes]] = []
    start = 0
    for cut in [*cuts, len(body)]:
        frames += parser.feed(body[start:cut])
        start = cut
    return frames + parser.close()


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_sse_parser_frames_split_anywhere(eol: str) -> None:
    body = SSE_FRAMES.replace("\n", eol).encode()
    assert parse_in_pieces(body, []) == SSE_EXPECTED
    for cut in range(1, len(body)):  # every split point, including inside a CRLF
        assert parse_in_pieces(body, [cut]) == SSE_EXPECTED, cut
    assert parse_in_pieces(body, range(1, len(body))) == SSE_EXPECTED  # byte by byte


def test_sse_parser_final_cr_ends_a_frame() -> None:
    assert parse_in_pieces(b"data: x\r\r", []) == [(b"", b"x")]
    assert parse_in_pieces(b"data: x\r", []) == []


def test_sse_module_is_domain_free() -> None:
    import ast
    import inspect

    from chatplane.kit import sse

    tree = ast.parse(inspect.getsource(sse))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [name for name in imported if name.startswith("chatplane")]
