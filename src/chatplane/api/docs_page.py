"""The API reference page (`GET /docs`) and its assets (`GET /docs/{name}`).

The page renders /openapi.json with Swagger UI (swagger-ui-dist 5.35.0, vendored in
api/docs_assets/ and shipped as package data: see the README there). Every URL the page
names is relative to it (`docs/...`, `openapi.json`), so it loads nothing from another
host and works behind a path prefix. Only the names in `ASSETS` are served: a request
names a key of that table, never a path, so nothing else can be read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

from chatplane.errors import NotFound

SWAGGER_UI_VERSION = "5.35.0"
PACKAGE = "chatplane.api"
ASSET_DIR = "docs_assets"

# The page changes with chatplane only, the assets with Swagger UI's version: browsers
# revalidate the page each time and keep the assets for a day.
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=86400"


@dataclass(frozen=True)
class Asset:
    """A file the page loads: its name under /docs/ and its content type."""

    name: str
    content_type: str


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset("swagger-ui.css", "text/css; charset=utf-8"),
        Asset("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        Asset("chatplane-docs.js", "text/javascript; charset=utf-8"),
    )
}

PAGE_CONTENT_TYPE = "text/html; charset=utf-8"
PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chatplane API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/chatplane-docs.js"></script>
</body>
</html>
"""


def page() -> bytes:
    """The HTML page; its links resolve to /docs/<asset> and /openapi.json."""
    return PAGE.encode()


@functools.cache
def _read(name: str) -> bytes:
    return (resources.files(PACKAGE) / ASSET_DIR / name).read_bytes()


def asset(name: str) -> tuple[Asset, bytes]:
    """The asset called `name` and its bytes (read once, then kept); NotFound for any
    name the page does not use."""
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"No such asset of the reference page: {name[:100]!r}")
    return found, _read(found.name)
