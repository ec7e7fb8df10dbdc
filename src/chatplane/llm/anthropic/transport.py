"""A lean HTTP path for `POST /v1/messages` (issue 15): the request the SDK sends, without
the SDK's per-request machinery.

Per call the SDK rebuilds what never changes for one credential (headers, URL, request
options), walks and copies the body, wraps aiohttp in httpx2 and builds a response
object; that was over half of the server's CPU per completion. Here:

- the URL and the headers are built once per provider (credential) from the SDK client
  itself: every header the SDK sends for `messages.create` with raw / streaming responses
  (auth, `anthropic-version`, accept, content-type, user-agent, the `x-stainless-*`
  telemetry and httpx2's connection / accept-encoding defaults), with
  `x-stainless-retry-count` fixed at 0 as the SDK's retries are off. All
  are sent, not a "relevant" subset: they cost nothing once built and keep the request
  indistinguishable from the SDK's (tests/unit/llm/test_lean_transport.py checks it);
- the body is serialized once per call, by an encoder configured as the SDK's
  (`ensure_ascii=False`, compact separators, `allow_nan=False`), so the bytes are the
  SDK's bytes. (The stdlib C encoder takes ~25 us for a 640-byte body here, ~8% of a
  lean `complete`; orjson would be faster but writes floats differently, `1e16` for
  `1e+16`, so the bytes would no longer be the SDK's.);
- the session is this transport's own aiohttp session, built on first use with the
  connector and timeouts of the SDK's aiohttp transport (`DefaultAioHttpClient`), rather
  than the SDK's: that one is private to the SDK's vendored transport and only created when
  the SDK sends. A provider uses one path, so one pool per credential exists either way.
  Proxy variables are read once, not per request (the session's trust_env would);
- failures are the SDK's: a non-2xx response becomes the `APIStatusError` subclass the SDK
  builds (by the SDK client's own factory, from an httpx2 response with the same status,
  headers and body), sending failures `APITimeoutError` / `APIConnectionError`, and
  read failures of a stream body the httpx2 exceptions the SDK's transport raises; so
  `errors.classify` and the retry rules apply unchanged.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import anthropic
import httpx2
from aiohttp.helpers import get_env_proxy_for_url
from anthropic._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions
from yarl import URL

from chatplane.llm.anthropic.request import AnthropicRequest

# The SDK's JSON encoder settings (anthropic._utils._json.encoder): same options, same bytes.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_PATH = b"v1/messages"


def encode_body(request: AnthropicRequest, *, stream: bool) -> bytes:
    """The JSON body `messages.create` sends, byte for byte: its keys in the SDK's order
    (the order of `create`'s body dict), omitted parameters left out."""
    body: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "messages": request.messages,
        "model": request.model,
    }
    if stream:
        body["stream"] = True
    if request.system is not None:
        body["system"] = request.system
    if request.tools:
        body["tools"] = request.tools
    return _ENCODER.encode(body).encode()


def sdk_headers(
    client: anthropic.AsyncAnthropic, http_client: httpx2.AsyncClient, timeout: anthropic.Timeout
) -> dict[str, str]:
    """The headers the SDK sends for every attempt of a call with `timeout` and its retries
    off, minus `x-stainless-raw-response` (per response flavour). Lower-case names.

    Under the SDK's own, those `http_client` adds to every request (httpx2's defaults:
    accept-encoding, connection; its accept and user-agent are overridden)."""
    headers = {name.lower(): value for name, value in http_client.headers.items()}
    headers["x-stainless-timeout"] = str(timeout.read)
    headers["x-stainless-retry-count"] = "0"
    if timeout.read is not None:
        headers["x-stainless-read-timeout"] = str(timeout.read)
    for name, value in client.default_headers.items():
        if isinstance(value, str):
            headers[name.lower()] = value
        else:  # Omit: the SDK drops the header
            headers.pop(name.lower(), None)
    return headers


@dataclass(slots=True)
class OpenStream:
    """An open streaming response: its body chunks, and its httpx2 form for error frames."""

    chunks: AsyncIterator[bytes]
    http_response: Callable[[], httpx2.Response]


class LeanTransport:
    """Sends `messages.create` requests over a plain aiohttp session."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        http_client: httpx2.AsyncClient,
        timeout: anthropic.Timeout,
    ) -> None:
        self._client = client  # for the status-error factory only
        base = client.base_url  # always ends with "/"
        self.url = str(base.copy_with(raw_path=base.raw_path + _PATH))
        self._url = URL(self.url, encoded=True)
        headers = sdk_headers(client, http_client, timeout)
        self._complete_headers = {**headers, "x-stainless-raw-response": "raw"}
        self._stream_headers = {**headers, "x-stainless-raw-response": "stream"}
        # httpx2 timeouts as the SDK's aiohttp transport passes them on.
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY / NO_PROXY, honoured as httpx2 does for the SDK, read once here: the
        # session's trust_env would look them (and .netrc) up in a thread on every request.
        self._proxy: dict[str, Any] = {}
        with contextlib.suppress(LookupError):
            proxy, proxy_auth = get_env_proxy_for_url(self._url)
            self._proxy = {"proxy": proxy, "proxy_auth": proxy_auth}

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            limits = anthropic.DEFAULT_CONNECTION_LIMITS
            connector = aiohttp.TCPConnector(
                limit=limits.max_connections or 0,
                keepalive_timeout=limits.keepalive_expiry,
                ssl=httpx2.create_ssl_context(),
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, body: bytes) -> bytes:
        """The 2xx response body of a non-streaming call."""
        headers = self._complete_headers
        try:
            async with self._open_session().post(
                self._url, data=body, headers=headers, **self._proxy
            ) as resp:
                data = await resp.read()
        except aiohttp.ServerTimeoutError as exc:  # connect and read timeouts
            raise anthropic.APITimeoutError(request=self._request(body, headers)) from exc
        except Exception as exc:
            # The SDK reads a non-streamed body while sending: its failures count as these.
            raise anthropic.APIConnectionError(request=self._request(body, headers)) from exc
        if not 200 <= resp.status < 300:
            raise self._status_error(resp, data, body, headers)
        return data

    @asynccontextmanager
    async def stream(self, body: bytes) -> AsyncGenerator[OpenStream, None]:
        """An open 2xx streaming response; closed (the connection dropped unless the body
        was read to the end) when the block exits."""
        headers = self._stream_headers
        try:
            resp = await self._open_session().post(
                self._url, data=body, headers=headers, **self._proxy
            )
        except aiohttp.ServerTimeoutError as exc:
            raise anthropic.APITimeoutError(request=self._request(body, headers)) from exc
        except Exception as exc:
            raise anthropic.APIConnectionError(request=self._request(body, headers)) from exc
        try:
            if not 200 <= resp.status < 300:
                with map_aiohttp_exceptions():
                    data = await resp.read()
                raise self._status_error(resp, data, body, headers)

            def http_response() -> httpx2.Response:
                return self._http_response(resp, b"", body, headers)

            async with aclosing(_chunks(resp)) as chunks:
                yield OpenStream(chunks, http_response)
        finally:
            resp.close()

    def _request(self, body: bytes, headers: dict[str, str]) -> httpx2.Request:
        return httpx2.Request("POST", self.url, headers=headers, content=body)

    def _http_response(
        self, resp: aiohttp.ClientResponse, data: bytes, body: bytes, headers: dict[str, str]
    ) -> httpx2.Response:
        # aiohttp has already decompressed the body: drop what describes the encoded form.
        raw_headers = [
            (name, value)
            for name, value in resp.raw_headers
            if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        return httpx2.Response(
            resp.status, headers=raw_headers, content=data, request=self._request(body, headers)
        )

    def _status_error(
        self, resp: aiohttp.ClientResponse, data: bytes, body: bytes, headers: dict[str, str]
    ) -> anthropic.APIStatusError:
        """The exception the SDK raises for this non-2xx response, built by the SDK."""
        response = self._http_response(resp, data, body, headers)
        return self._client._make_status_error_from_response(response)


async def _chunks(resp: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    # Read failures surface as the httpx2 exceptions of the SDK's aiohttp transport.
    with map_aiohttp_exceptions():
        async for chunk in resp.content.iter_any():
            yield chunk
