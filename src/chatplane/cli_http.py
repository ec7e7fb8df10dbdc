"""The CLI's REST client (urllib, like any client of the API): `chatplane agents push`,
`deploy` and `test run` talk to a running chatplane at $CHATPLANE_URL with
$CHATPLANE_API_KEY (or --url / --key)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Self

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = 30.0


class HttpFailure(Exception):
    """A non-2xx reply (its status and body), or no reply at all (status 0)."""

    def __init__(self, message: str, status: int = 0, body: bytes = b"") -> None:
        super().__init__(message)
        self.message, self.status, self.body = message, status, body

    def json(self) -> dict[str, Any]:
        """The error body as JSON ({} when it is not)."""
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def quote_path(*parts: str) -> str:
    """`/a/b/c` with every part quoted (ids and names never add path segments)."""
    return "/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


class Client:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url.rstrip("/"), key

    @classmethod
    def from_options(cls, url: str | None, key: str | None) -> Self:
        """From --url / --key, else $CHATPLANE_URL / $CHATPLANE_API_KEY; a key is required."""
        key = key or os.environ.get("CHATPLANE_API_KEY") or ""
        if not key:
            raise HttpFailure("an API key is needed: set CHATPLANE_API_KEY or pass --key")
        return cls(url or os.environ.get("CHATPLANE_URL") or DEFAULT_URL, key)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """The reply's JSON; HttpFailure for a non-2xx reply or an unreachable server."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise HttpFailure(str(exc.reason), exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HttpFailure(f"cannot reach {self.url}: {reason}") from None
