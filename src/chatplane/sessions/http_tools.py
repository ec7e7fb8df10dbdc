"""`type: http` tools: real HTTP calls with timeouts and an outbound safety check.

By default a tool may not reach loopback, link-local, private, multicast, reserved or
cloud-metadata addresses (checked on every address the host name resolves to, at call
time). The operator allows hosts with CHATPLANE_TOOL_ALLOWED_HOSTS ("host" or
"host:port", comma-separated). Placeholders `{name}` in the endpoint take the
URL-quoted argument; the other arguments go in the query string (GET, DELETE) or as a
JSON body. No retries: a failed call is the agent's ON_ERROR to handle.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
import urllib.parse
from collections.abc import Collection
from typing import Any

import aiohttp

from chatplane.lang import ir
from chatplane.runtime import ToolResult

DEFAULT_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 1_000_000
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata"})


class ToolBlocked(Exception):
    """The destination is not allowed."""


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _fail(kind: str, message: str, started: float) -> ToolResult:
    return ToolResult(ok=False, value=None, error=message, error_type=kind, latency_ms=_ms(started))


def build_url(endpoint: str, method: str, args: dict[str, Any]) -> tuple[str, Any]:
    """The URL with `{name}` placeholders filled, and the JSON body (None for GET/DELETE)."""
    rest = dict(args)
    for name in list(rest):
        token = "{" + name + "}"
        if token in endpoint:
            endpoint = endpoint.replace(token, urllib.parse.quote(str(rest.pop(name)), safe=""))
    if method in ("GET", "DELETE", "HEAD"):
        if rest:
            query = urllib.parse.urlencode(
                {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
            )
            endpoint += ("&" if "?" in endpoint else "?") + query
        return endpoint, None
    return endpoint, rest


class HttpTools:
    """Calls http tools over one pooled aiohttp session."""

    def __init__(self, *, allowed_hosts: Collection[str] = ()) -> None:
        self._allowed = frozenset(h.strip().lower() for h in allowed_hosts if h.strip())
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=60)
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check_destination(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolBlocked(f"unsupported tool URL scheme {parts.scheme!r}")
        host = parts.hostname.lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if host in self._allowed or f"{host}:{port}" in self._allowed:
            return
        if host in _METADATA_HOSTS:
            raise ToolBlocked(f"tool destination {host} is not allowed")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ToolBlocked(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if (
                address.is_loopback
                or address.is_private
                or address.is_link_local
                or address.is_multicast
                or address.is_reserved
                or address.is_unspecified
            ):
                raise ToolBlocked(
                    f"tool destination {host} resolves to a non-public address; "
                    "allow it with CHATPLANE_TOOL_ALLOWED_HOSTS"
                )

    async def call(self, tool: ir.Tool, args: dict[str, Any]) -> ToolResult:
        started = time.perf_counter()
        if tool.http is None:
            return _fail("tool_error", f"tool {tool.name} has no http binding", started)
        method = (tool.http.method or "GET").upper()
        url, body = build_url(tool.http.endpoint, method, args)
        try:
            await self.check_destination(url)
        except ToolBlocked as exc:
            return _fail("tool_error", str(exc), started)
        timeout = (tool.http.timeout_ms or DEFAULT_TIMEOUT_S * 1000) / 1000
        try:
            async with self._client().request(
                method,
                url,
                json=body,
                headers=dict(tool.http.headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
        except TimeoutError:
            return _fail("timeout", f"tool {tool.name} timed out after {timeout:g}s", started)
        except aiohttp.ClientError as exc:
            return _fail("tool_error", f"tool {tool.name} failed: {type(exc).__name__}", started)
        if len(raw) > MAX_RESPONSE_BYTES:
            return _fail("tool_error", f"tool {tool.name} answered more than 1 MB", started)
        text = raw.decode("utf-8", "replace")
        try:
            value: Any = json.loads(text) if text.strip() else None
        except ValueError:
            value = text
        if status >= 400:
            return ToolResult(
                ok=False,
                value=value,
                error=f"tool {tool.name} answered HTTP {status}",
                error_type="tool_error",
                latency_ms=_ms(started),
            )
        return ToolResult(
            ok=True, value=value, error=None, error_type=None, latency_ms=_ms(started)
        )
