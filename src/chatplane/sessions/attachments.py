"""Attachments: the multipart upload, the type sniffed from the bytes, and the
content-addressed file store under the data directory.

A file is stored as `<root>/<sha256[:2]>/<sha256>`: its name comes from its content,
never from the client, so no upload can choose or escape its path, and identical uploads
share one file. The client's file name is kept for display only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from chatplane.errors import InvalidArgument, ResourceExhausted

DEFAULT_MAX_BYTES = 20 * 1000 * 1000  # 20 MB
FILE_FIELD = "file"
MAX_FILENAME = 255
# Multipart framing allowed beyond the file itself (boundaries, part headers, other parts).
_FRAMING = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AttachmentTooLarge(ResourceExhausted):
    """An upload over the size limit (HTTP 413 at the gateway: a size, not a rate)."""

    reason = "ATTACHMENT_TOO_LARGE"


# The other (text) parts of a form are kept up to this many bytes each.
MAX_FIELD_BYTES = 256


@dataclass(frozen=True, slots=True)
class Upload:
    """The `file` part of a multipart body, and its other form fields (first of each
    name, cut to MAX_FIELD_BYTES, trimmed)."""

    filename: str
    data: bytes
    fields: dict[str, str] = field(default_factory=dict)


def too_large(max_bytes: int) -> AttachmentTooLarge:
    return AttachmentTooLarge(
        f"File too large: at most {max_bytes} bytes", field=FILE_FIELD, retry_after=None
    )


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid request: {message}", field=FILE_FIELD)


def clean_filename(raw: str) -> str:
    """The last path part of the client's name, without control characters, at most
    255 characters; `upload` when nothing is left."""
    name = re.split(r"[/\\]", raw)[-1]
    name = _CONTROL.sub("", name).strip().lstrip(".")
    return name[:MAX_FILENAME] or "upload"


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


def parse_upload(content_type: str, body: bytes, *, max_bytes: int) -> Upload:
    """The `file` part of a multipart/form-data body (the first one if several), with the
    form's other fields. CPU-bound on large bodies: callers run it in a thread."""
    if len(body) > max_bytes + _FRAMING:
        raise too_large(max_bytes)
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise _bad("send the file as multipart/form-data with a `file` part (curl -F file=@...)")
    parts: list[_Part] = []
    header = [b"", b""]

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        part.size += end - start
        if part.size > max_bytes:
            raise too_large(max_bytes)
        part.chunks.append(data[start:end])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        name = header[0].decode("latin-1").strip().lower()
        parts[-1].headers[name] = header[1].decode("latin-1").strip()  # bytes kept as is
        header[0], header[1] = b"", b""

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise _bad("the multipart body is malformed") from exc
    found: Upload | None = None
    fields: dict[str, str] = {}
    for part in parts:
        disposition, options = parse_options_header(part.headers.get("content-disposition", ""))
        if disposition != b"form-data":
            continue
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != FILE_FIELD:
            text = b"".join(part.chunks)[:MAX_FIELD_BYTES]
            fields.setdefault(name, text.decode("utf-8", "replace").strip())
        elif found is None:
            data = b"".join(part.chunks)
            if not data:
                raise _bad("the file is empty")
            raw_name = options.get(b"filename", b"").decode("utf-8", "replace")
            found = Upload(clean_filename(raw_name), data)
    if found is None:
        raise _bad("the multipart body has no `file` part")
    return Upload(found.filename, found.data, fields)


def sniff(data: bytes) -> str:
    """The mime type from the content's magic bytes; `text/plain` for valid UTF-8 without
    NUL bytes; else `application/octet-stream`. The client's claim is never used."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text/plain"
    return "application/octet-stream"


class FileStore:
    """Content-addressed files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):  # only ever a hash, never a name
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    async def put(self, data: bytes) -> str:
        """Store `data` (atomically: a temp file renamed into place); returns its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, digest, data)
        return digest

    def _write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def remove(self, sha256: str) -> None:
        await asyncio.to_thread(self.path(sha256).unlink, missing_ok=True)
