"""The API reference page through the real Envoy: `GET /docs` is HTML that loads only
chatplane's own assets (no other host), each served with its content type, the document
it renders is /openapi.json relative to the page, and nothing outside the fixed list of
assets can be fetched."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from chatplane.api import docs_page


class _Links(HTMLParser):
    """Every URL the page makes the browser load: script src, link href."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value is not None and key in ("src", "href"):
                self.urls.append((tag, value))


async def _page(http: httpx.AsyncClient) -> tuple[str, list[tuple[str, str]]]:
    response = await http.get("/docs")  # no API key
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    parser = _Links()
    parser.feed(response.text)
    return str(response.url), parser.urls


async def test_the_page_loads_only_local_assets(http: httpx.AsyncClient) -> None:
    page_url, links = await _page(http)
    assert not re.search(r"https?://", (await http.get("/docs")).text)
    loaded = [url for _, url in links if not url.startswith("data:")]
    assert loaded, "the page names no assets"
    for url in loaded:
        resolved = urlsplit(urljoin(page_url, url))
        assert resolved.netloc == urlsplit(page_url).netloc, url
        assert resolved.path.startswith("/docs/"), url
    # Every served asset is one the page uses: the whitelist holds nothing else.
    named = {urlsplit(urljoin(page_url, url)).path.removeprefix("/docs/") for url in loaded}
    assert named == set(docs_page.ASSETS)


@pytest.mark.parametrize(
    ("suffix", "content_type"),
    [(".js", "text/javascript; charset=utf-8"), (".css", "text/css; charset=utf-8")],
)
async def test_each_asset_is_served_with_its_content_type(
    http: httpx.AsyncClient, suffix: str, content_type: str
) -> None:
    page_url, links = await _page(http)
    urls = [urljoin(page_url, url) for _, url in links if url.endswith(suffix)]
    assert urls
    for url in urls:
        response = await http.get(url)
        assert response.status_code == 200, (url, response.text[:200])
        assert response.headers["content-type"] == content_type
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == docs_page.ASSET_CACHE
        name = urlsplit(url).path.removeprefix("/docs/")
        packaged = resources.files("chatplane.api") / "docs_assets" / name
        assert response.content == packaged.read_bytes()  # byte for byte, not re-encoded


async def test_the_viewer_renders_the_openapi_document_beside_the_page(
    http: httpx.AsyncClient,
) -> None:
    page_url, _ = await _page(http)
    script = (await http.get(urljoin(page_url, "docs/chatplane-docs.js"))).text
    # The initializer resolves `openapi.json` against the page and turns the validator
    # badge (a call to validator.swagger.io) off.
    found = re.search(r'new URL\("([^"]+)", document\.baseURI\)', script)
    assert found, script
    assert not re.search(r"https?://", script)
    assert "validatorUrl: null" in script
    document = await http.get(urljoin(page_url, found.group(1)))
    assert document.status_code == 200
    assert document.json()["paths"]["/docs"]["get"]["security"] == []
    bundle = await http.get(urljoin(page_url, "docs/swagger-ui-bundle.js"))
    assert f'"{docs_page.SWAGGER_UI_VERSION}"' in bundle.text  # the version the docs pin
    page = await http.get("/docs")
    assert page.headers["cache-control"] == docs_page.PAGE_CACHE


@pytest.mark.parametrize(
    "path",
    [
        "/docs/unknown.js",
        "/docs/LICENSE-swagger-ui",  # in the assets directory, but not an asset of the page
        "/docs/README.md",
        "/docs/..%2Fdocs_page.py",
        "/docs/%2E%2E%2F%2E%2E%2Fconfig%2F__init__.py",
        "/docs/swagger-ui.css.map",
    ],
)
async def test_anything_else_is_404(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 404, (path, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")
    # The server's whitelist answered (not the gateway's ROUTE_NOT_FOUND).
    assert response.json()["code"] == 5, response.text
    assert response.json()["message"].startswith("No such asset"), response.text
