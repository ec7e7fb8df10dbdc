"""Attachments without a server: multipart parsing, sniffing, names, the file store; and
the metrics' percentiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatplane.errors import InvalidArgument
from chatplane.sessions.attachments import (
    AttachmentTooLarge,
    FileStore,
    clean_filename,
    parse_upload,
    sniff,
)
from chatplane.sessions.views import latency, page_bounds, percentile

BOUNDARY = "XyZ"
CT = f"multipart/form-data; boundary={BOUNDARY}"


def body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_parse_picks_the_file_part() -> None:
    upload = parse_upload(
        CT, body(("note", None, b"x"), ("file", "r\u00e9sum\u00e9.pdf", b"%PDF-1")), max_bytes=100
    )
    assert (upload.filename, upload.data) == ("r\u00e9sum\u00e9.pdf", b"%PDF-1")


@pytest.mark.parametrize(
    ("content_type", "payload", "words"),
    [
        ("application/json", b"{}", "multipart/form-data"),
        ("multipart/form-data", b"", "multipart/form-data"),
        (CT, body(("other", "a", b"x")), "`file` part"),
        (CT, body(("file", "a", b"")), "empty"),
        (CT, b"--XyZ\r\nno headers end", "malformed"),
    ],
)
def test_parse_errors(content_type: str, payload: bytes, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_upload(content_type, payload, max_bytes=100)
    assert words in caught.value.message
    assert caught.value.field == "file"


def test_size_limit() -> None:
    parse_upload(CT, body(("file", "a", b"x" * 100)), max_bytes=100)
    with pytest.raises(AttachmentTooLarge):
        parse_upload(CT, body(("file", "a", b"x" * 101)), max_bytes=100)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"%PDF-1.7\n...", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe0JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        ("plain t\u00e9xt".encode(), "text/plain"),
        (b"\xff\xfe\x00bad", "application/octet-stream"),
        (b"text\x00with nul", "application/octet-stream"),
    ],
)
def test_sniff(data: bytes, mime: str) -> None:
    assert sniff(data) == mime


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\doc.pdf", "doc.pdf"),
        ("a\x00b\nc.txt", "abc.txt"),
        ("", "upload"),
        ("..", "upload"),
        (".hidden", "hidden"),
        ("x" * 300, "x" * 255),
    ],
)
def test_clean_filename(raw: str, clean: str) -> None:
    assert clean_filename(raw) == clean


async def test_file_store_is_content_addressed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    digest = await store.put(b"hello")
    assert await store.put(b"hello") == digest
    path = store.path(digest)
    assert path.read_bytes() == b"hello" and path.parent.parent == tmp_path
    with pytest.raises(ValueError, match="SHA-256"):
        store.path("../../etc/passwd")
    await store.remove(digest)
    assert not path.exists()


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert percentile([], 50) == 0.0
    stats = latency([30.0, 10.0, 20.0])
    assert (stats.avg_ms, stats.p50_ms, stats.max_ms) == (20.0, 20.0, 30.0)


def test_page_bounds() -> None:
    assert page_bounds(None, 0) == (50, 0)
    assert page_bounds(200, 10) == (200, 10)
    for limit, offset, field in ((201, 0, "limit"), (0, 0, "limit"), (10, -1, "offset")):
        with pytest.raises(InvalidArgument) as caught:
            page_bounds(limit, offset)
        assert caught.value.field == field
