"""Incremental server-sent-events (SSE) parsing: bytes in, `(event, data)` frames out.

Domain-free: knows the SSE wire format only (https://html.spec.whatwg.org/#server-sent-events).
"""

from __future__ import annotations


class SSEParser:
    """Incremental server-sent-events parser: bytes in, `(event, data)` frames out.

    Lines end with LF, CRLF or CR (also when split across chunks); a blank line ends a
    frame; multiple `data:` lines join with LF; comments and `id`/`retry` are ignored. A
    frame left unterminated at the end of the body is dropped, as the SSE spec says.
    """

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""  # the start of an unfinished line
        self._event = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            # A trailing CR is held back: it may be the first half of a CRLF.
            held = buffer.endswith(b"\r")
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer += b"\r"
        *lines, self._buffer = buffer.split(b"\n")
        return self._frames(lines)

    def close(self) -> list[tuple[bytes, bytes]]:
        """Frames completed only by the end of the body (a held-back final CR)."""
        rest, self._buffer = self._buffer, b""
        return self._frames(rest.replace(b"\r", b"\n").split(b"\n")[:-1])

    def _frames(self, lines: list[bytes]) -> list[tuple[bytes, bytes]]:
        frames: list[tuple[bytes, bytes]] = []
        for line in lines:
            if not line:
                if self._data or self._event:
                    frames.append((self._event, b"\n".join(self._data)))
                    self._event = b""
                    self._data = []
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
            # "" (a comment), id, retry and unknown fields are not used
        return frames
