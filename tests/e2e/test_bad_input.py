"""A client's malformed input is a short 400 through Envoy, never a 5xx (issue 12, item 3).

Each case used to answer 500 (protobuf decode errors with the exception class in the
text, OverflowError on a date) or 502 (an error message quoting 100 KB of input, too large
for Envoy's header limit). None may leave a traceback in the server log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from chatplane.api.errors import MAX_MESSAGE_CHARS
from tests.conftest import TenantKeys
from tests.e2e.test_fuzz import deep
from tests.e2e.test_rest import create_project


def _deep(depth: int) -> Any:
    return deep(depth, "mixed")


def _assert_short_400(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text[:300]
    body: dict[str, Any] = response.json()
    assert len(body["message"]) <= MAX_MESSAGE_CHARS
    assert "<class" not in body["message"] and "Error" not in body["message"]
    return body


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO)
    yield
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]


@pytest.mark.usefixtures("no_tracebacks")
async def test_invalid_utf8_in_a_path_id_is_400_before_authentication(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    for headers in ({}, tenant.headers):  # decided before credentials are looked at
        response = await http.get("/api/projects/%ff", headers=headers)
        body = _assert_short_400(response)
        assert body["message"] == "Invalid request: a text field is not valid UTF-8"
        assert body["details"][0]["reason"] == "UNDECODABLE_REQUEST"


@pytest.mark.usefixtures("no_tracebacks")
async def test_deeply_nested_json_is_400(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    project = await create_project(http, tenant)
    cases = [
        {"projectId": project, "messages": [{"role": "user", "content": [_deep(90)]}]},
        {
            "projectId": project,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "t", "description": "d", "parameters": {"p": _deep(90)}}],
        },
    ]
    for route in ("/api/v1/chat/complete", "/api/v1/chat/stream"):
        for body in cases:
            response = await http.post(route, json=body, headers=tenant.headers)
            found = _assert_short_400(response)
            assert found["message"] == (
                "Invalid request: JSON nested too deeply (at most about 30 levels)"
            )
    # 25 levels still work.
    ok = {"projectId": project, "messages": [{"role": "user", "content": "hi"}]}
    ok["tools"] = [{"name": "t", "description": "d", "parameters": {"p": _deep(25)}}]
    assert (await http.post("/api/v1/chat/complete", json=ok, headers=tenant.headers)).is_success


@pytest.mark.usefixtures("no_tracebacks")
async def test_out_of_range_dates_are_400(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    project = await create_project(http, tenant)
    for params in (
        {"endDate": "9999-12-31"},
        {"startDate": "0001-01-01T00:00:00+14:00"},
        {"endDate": "9999-12-31T23:59:59-12:00"},
    ):
        response = await http.get(
            "/api/v1/chat/usage", params={"projectId": project, **params}, headers=tenant.headers
        )
        body = _assert_short_400(response)
        assert body["message"].endswith("is out of range")


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_100kb_field_is_not_echoed_in_full(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    project = await create_project(http, tenant)
    body = {
        "projectId": project,
        "messages": [{"role": "user", "content": [{"type": "x" * 100_000, "text": "hi"}]}],
    }
    response = await http.post("/api/v1/chat/complete", json=body, headers=tenant.headers)
    found = _assert_short_400(response)  # was 502: the echo overflowed Envoy's header limit
    assert found["message"].endswith("\u2026")
    # Envoy's own replies (unknown query parameter, unknown route) are clipped too.
    for response in (
        await http.get("/api/projects", params={"q" * 20_000: "1"}, headers=tenant.headers),
        await http.get("/api/" + "z" * 20_000, headers=tenant.headers),
    ):
        assert response.status_code in (400, 404)
        assert len(response.json()["message"]) <= MAX_MESSAGE_CHARS + 1


async def test_header_and_body_sizes_are_not_429(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """429 means rate limiting only (issue 12, item 4): sizes answer 431 / 413."""
    project = await create_project(http, tenant)
    # Headers between grpc's default limits (8-16 KiB: 429 at random) and Envoy's 32 KiB.
    for size in (9_000, 17_000, 30_000):
        response = await http.get("/api/projects", headers={**tenant.headers, "x-big": "z" * size})
        assert response.status_code == 200, (size, response.text[:200])
    response = await http.get("/api/projects", headers={**tenant.headers, "x-big": "z" * 40_000})
    assert response.status_code == 431
    assert response.json()["message"] == "Request headers too large"
    # A body over 8 MiB: 413 from Envoy.
    too_big = {"projectId": project, "messages": [{"role": "user", "content": "a" * (8 << 20)}]}
    response = await http.post("/api/v1/chat/complete", json=too_big, headers=tenant.headers)
    assert response.status_code == 413
    # A body within the limit whose reply (the echo) is over grpc's send limit: 413 with a
    # clear message, not grpc's RESOURCE_EXHAUSTED (a 429 without Retry-After).
    near = "a" * ((8 << 20) - 120)
    body = json.dumps(
        {"projectId": project, "messages": [{"role": "user", "content": near}]},
        separators=(",", ":"),
    )
    response = await http.post(
        "/api/v1/chat/complete",
        content=body,
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert response.status_code == 413, response.text[:300]
    assert response.json()["message"].startswith("Response too large")
    assert response.json()["details"][0]["reason"] == "RESPONSE_TOO_LARGE"
    # The streamed echo of the same body arrives whole, in pieces under the send limit.
    async with http.stream(
        "POST",
        "/api/v1/chat/stream",
        content=body,
        headers={**tenant.headers, "content-type": "application/json"},
    ) as stream:
        assert stream.status_code == 200
        received = b"".join([chunk async for chunk in stream.aiter_bytes()])
    assert received.count(b"a" * 1000) >= len(near) // 1000 - 1
    assert received.rstrip().splitlines()[-2] == b"event: complete"


async def test_unknown_body_fields_are_ignored_as_documented(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """Issue 12, item 13: Envoy's transcoder drops unknown JSON body fields (no option
    rejects them); the misspelled field reads as absent and the error names the real one."""
    response = await http.post("/api/projects", json={"nam": "demo"}, headers=tenant.headers)
    assert response.status_code == 400
    assert "name" in response.json()["message"]
    # Unknown query parameters, which Envoy can reject, are rejected.
    listed = await http.get("/api/projects", params={"limt": "5"}, headers=tenant.headers)
    assert listed.status_code == 400
