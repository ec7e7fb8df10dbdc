"""Operating chatplane: probes, Prometheus metrics (workers mode too), JSON logs with
request ids, Envoy's JSON access log, and the generated OpenAPI document."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from openapi_spec_validator import validate

from chatplane.app import App
from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess
from chatplane.observability import logs
from chatplane.ops.v1 import ops_service_pb2 as ops_pb
from chatplane.ops.v1 import ops_service_pb2_grpc as ops_grpc
from tests.conftest import BOOTSTRAP_KEY, TenantKeys, make_settings
from tests.e2e.test_rest import create_project
from tests.e2e.test_workers import _run_env, _start_run

METRICS_TOKEN = "metrics-secret-token"


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture(scope="module")
async def own(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[App, str, Path]]:
    """A private server + Envoy (with a metrics token and an access-log file), for the
    tests that break things (database, draining)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the private server runs on SQLite")
    data = tmp_path_factory.mktemp("own")
    app = App(
        make_settings(data, f"sqlite+aiosqlite:///{data / 'own.db'}", metrics_token=METRICS_TOKEN)
    )
    await app.start()
    access_log = data / "access.log"
    envoy = EnvoyProcess(
        http_port=0,
        grpc_port=app.grpc_port,
        descriptor=descriptor_path(),
        work_dir=data / "envoy",
        access_log_path=access_log,
    )
    await envoy.start()
    try:
        yield app, f"http://127.0.0.1:{envoy.http_port}", access_log
    finally:
        await envoy.stop()
        await app.stop(0.5)


async def test_healthz_and_readyz(own: tuple[App, str, Path]) -> None:
    app, base, _ = own
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        alive = await http.get("/healthz")
        assert alive.status_code == 200 and alive.json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "draining": "no", "gateway": "ok"},
        }

        class Unreachable:
            def connect(self) -> None:
                raise ConnectionRefusedError("database down")

        engine = app.db.engine
        app.db.engine = Unreachable()  # type: ignore[assignment]
        try:
            down = await http.get("/readyz")
        finally:
            app.db.engine = engine
        assert down.status_code == 503
        assert down.json()["status"] == "not_ready"
        assert down.json()["checks"]["database"] == "unreachable: ConnectionRefusedError"
        assert (await http.get("/healthz")).status_code == 200  # alive all the same

        app.server.draining = True
        try:
            draining = await http.get("/readyz")
        finally:
            app.server.draining = False
        assert draining.status_code == 503
        assert draining.json()["checks"]["draining"] == "yes"


async def test_metrics_access(own: tuple[App, str, Path]) -> None:
    app, base, _ = own
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        # Loopback: allowed, even claiming another address (Envoy replaces the header).
        local = await http.get("/metrics", headers={"x-chatplane-peer": "10.1.2.3"})
        assert local.status_code == 200
        assert local.headers["content-type"].startswith("text/plain")
        assert "chatplane_rpc_requests_total" in local.text
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        stub = ops_grpc.OpsServiceStub(channel)
        # A REST client elsewhere (as Envoy reports it) needs the token.
        remote = (("x-chatplane-peer", "10.1.2.3"),)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetMetrics(ops_pb.GetMetricsRequest(), metadata=remote)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        allowed = await stub.GetMetrics(
            ops_pb.GetMetricsRequest(),
            metadata=(*remote, ("authorization", f"Bearer {METRICS_TOKEN}")),
        )
        assert b"chatplane_rpc_in_flight" in allowed.data


async def test_metrics_move_after_calls(
    http: httpx.AsyncClient, tenant: TenantKeys, app: App
) -> None:
    before = (await http.get("/metrics")).text
    pid = await create_project(http, tenant)
    chat = {"projectId": pid, "messages": [{"role": "user", "content": "count me"}]}
    done = await http.post("/api/v1/chat/complete", json=chat, headers=tenant.headers)
    assert done.status_code == 200
    async with http.stream(
        "POST", "/api/v1/chat/stream", json=chat, headers=tenant.headers
    ) as streamed:
        _ = [chunk async for chunk in streamed.aiter_raw()]
    after = (await http.get("/metrics")).text
    usage = done.json()["usage"]

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    method = "/chatplane.chat.v1.ChatService/CompleteChat"
    assert delta("chatplane_rpc_requests_total", method=method, code="OK") == 1
    assert delta("chatplane_rpc_duration_seconds_count", method=method) == 1
    local = {"model": "chatplane-local-echo", "provider": "local"}
    assert delta("chatplane_llm_requests_total", outcome="ok", **local) == 2
    assert delta("chatplane_llm_tokens_total", direction="input", **local) == (
        2 * usage["inputTokens"]
    )
    # Time to first token is measured on streams.
    assert delta("chatplane_llm_time_to_first_token_seconds_count", **local) == 1
    # The local model has no price: no cost is counted for it (an Anthropic call has one).
    assert delta("chatplane_llm_cost_usd_total", **local) == 0
    assert delta("chatplane_usage_writer_flush_seconds_count") >= 1
    assert "chatplane_rpc_in_flight" in after and "chatplane_rpc_shed_total" in after

    # A rate-limit rejection counts (the per-session limit, 60 a minute by default).
    session_chat = {**chat, "sessionId": "metrics-session"}
    for _ in range(61):
        last = await http.post("/api/v1/chat/complete", json=session_chat, headers=tenant.headers)
    assert last.status_code == 429
    limited = (await http.get("/metrics")).text
    assert sample(limited, "chatplane_rate_limit_rejections_total") >= 1


async def test_metrics_in_workers_mode(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    env = _run_env(tmp_path, CHATPLANE_WORKERS="2", CHATPLANE_BOOTSTRAP_API_KEY=BOOTSTRAP_KEY)
    proc, text = await _start_run(env)
    try:
        match = re.search(r"REST \(Envoy\): (http://\S+)", text)
        assert match
        headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        async with httpx.AsyncClient(base_url=match.group(1), timeout=10) as http:
            for _ in range(6):  # round-robin: both workers answer some
                assert (await http.get("/api/projects", headers=headers)).status_code == 200
            pages = [(await http.get("/metrics")).text for _ in range(2)]
        method = "/chatplane.project.v1.ProjectService/ListProjects"
        # Whichever worker answers, it reports every worker's calls.
        for page in pages:
            assert sample(page, "chatplane_rpc_requests_total", method=method) == 6
        assert (tmp_path / "prometheus").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_json_logs_carry_the_request_id(own: tuple[App, str, Path]) -> None:
    _, base, access_log = own
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logs.json_formatter())
    access = logging.getLogger("chatplane.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            await http.get("/healthz", headers={"X-Request-Id": "req-observe-1"})
            await http.get("/no/such/route", headers={"X-Request-Id": "req-observe-2"})
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "req-observe-1"]
    assert len(mine) == 1  # one access-log line per call
    line = mine[0]
    assert line["logger"] == "chatplane.access" and line["level"] == "INFO"
    assert line["method"] == "/chatplane.ops.v1.OpsService/GetLiveness"
    assert line["status"] == "OK" and isinstance(line["latency_ms"], float)
    assert "time" in line and "message" in line

    # Any logger, inside a call: the same id.
    logs.bind_request_id("req-ctx")
    record = logging.LogRecord("chatplane.x", logging.INFO, __file__, 1, "hello", None, None)
    assert logs.RequestIdFilter().filter(record) and record.request_id == "req-ctx"
    logs.bind_request_id(None)

    # Envoy's JSON access log has its own replies too (the 404 never reached the server).
    for _ in range(50):
        entries = [json.loads(x) for x in access_log.read_text().splitlines() if x.strip()]
        if any(e.get("request_id") == "req-observe-2" for e in entries):
            break
        await asyncio.sleep(0.1)
    by_id = {e["request_id"]: e for e in entries if e.get("request_id")}
    assert by_id["req-observe-2"]["status"] == 404
    assert by_id["req-observe-2"]["path"] == "/no/such/route"
    assert by_id["req-observe-1"]["status"] == 200
    assert by_id["req-observe-1"]["method"] == "GET"  # the client's, not the transcoded POST


def test_log_configuration_writes_json_lines() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("INFO", "json", stream=out)
        logs.bind_request_id("abc")
        logging.getLogger("chatplane.test").info("hello %s", "world", extra={"k": 1})
        logs.bind_request_id(None)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["message"] == "hello world" and line["request_id"] == "abc" and line["k"] == 1
    with pytest.raises(ValueError, match="CHATPLANE_LOG_FORMAT"):
        logs.configure("INFO", "xml")


async def test_openapi_document_is_valid_and_every_path_is_routed(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    for expected in ("/api/projects", "/api/v1/chat/stream", "/v1/chat/completions", "/readyz"):
        assert expected in paths
    # Field comments and behaviours come from the protos (enums: tests/unit/api).
    create = paths["/api/projects"]["post"]["requestBody"]["content"]["application/json"]
    assert "name" in create["schema"]["required"]
    assert create["schema"]["properties"]["name"]["description"]
    assert paths["/healthz"]["get"]["security"] == []

    # Every documented path and verb reaches a server method: no ROUTE_NOT_FOUND.
    for template, verbs in paths.items():
        path = re.sub(r"\{[^}]+\}", "x1", template)
        for verb in verbs:
            got = await http.request(verb.upper(), path, content=b"{}" if verb != "get" else None)
            reasons = (
                [d.get("reason") for d in got.json().get("details", [])]
                if got.headers.get("content-type", "").startswith("application/json")
                and isinstance(got.json(), dict)
                else []
            )
            assert "ROUTE_NOT_FOUND" not in reasons, (verb, path)
            error = got.json().get("error") if got.status_code == 404 else None
            assert not (error and error.get("code") == "route_not_found"), (verb, path)
            assert got.status_code != 404 or "ROUTE_NOT_FOUND" not in got.text, (verb, path)
