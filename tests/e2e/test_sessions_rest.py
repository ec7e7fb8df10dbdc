"""The sessions API, transcripts, feedback, attachments and /api/v1/chat/send through the
real Envoy, with the seed's examples (seed 000)."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from chatplane.app import App
from chatplane.kit.clock import utcnow
from chatplane.storage.models import (
    AgentSession,
    SessionAttachment,
    SessionMessage,
    TraceEventRecord,
    UsageRecord,
)
from tests.conftest import TenantKeys
from tests.e2e.test_agent_turns import SENT, VALID, agent_project, mocks, turn

SESSION_FIELDS = {
    "id",
    "runtimeSessionId",
    "agentName",
    "status",
    "channel",
    "messageCount",
    "traceEventCount",
    "tokenCount",
    "estimatedCost",
    "errorCount",
    "durationMs",
    "createdAt",
    "lastActivityAt",
}


def tiny_png() -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def tiny_pdf() -> bytes:
    """A valid one-page PDF with a correct xref table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


async def conversation(
    http: httpx.AsyncClient, tenant: TenantKeys, *, complete: bool = True
) -> tuple[str, str]:
    """A project with the password-reset agent and one conversation: (projectId, sessionId)."""
    pid = await agent_project(http, tenant)
    first = await turn(http, tenant, pid, "I forgot my password")
    assert first.status_code == 200, first.text
    sid = str(first.json()["sessionId"])
    second = await turn(http, tenant, pid, "me@example.com", sessionId=sid, **mocks(SENT))
    assert second.status_code == 200, second.text
    if complete:
        third = await turn(http, tenant, pid, "123456", sessionId=sid, **mocks(VALID))
        assert third.json()["action"]["type"] == "complete"
    return pid, sid


async def upload(
    http: httpx.AsyncClient,
    tenant: TenantKeys,
    pid: str,
    sid: str,
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await http.post(
        f"/api/projects/{pid}/sessions/{sid}/attachments",
        files={"file": (name, data, content_type)},
        headers=tenant.headers,
    )


async def test_create_session_by_id_name_and_path(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    agent = await http.get(f"/api/projects/{pid}/agents/Password_Reset", headers=tenant.headers)
    agent_id = agent.json()["agent"]["id"]
    for wanted in (agent_id, "Password_Reset", "support/Password_Reset"):
        created = await http.post(
            f"/api/projects/{pid}/sessions", json={"agentId": wanted}, headers=tenant.headers
        )
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["success"] is True
        session = body["session"]
        assert set(session) == {"id", "agentId", "agentName", "createdAt"}
        assert session["id"].startswith("sess_")
        assert session["agentId"] == agent_id and session["agentName"] == "Password_Reset"
        assert session["createdAt"].endswith("Z")
    missing = await http.post(
        f"/api/projects/{pid}/sessions", json={"agentId": "Nobody"}, headers=tenant.headers
    )
    assert missing.status_code == 404 and missing.json()["message"] == "Agent not found"
    required = await http.post(f"/api/projects/{pid}/sessions", json={}, headers=tenant.headers)
    assert required.status_code == 400
    assert required.json()["details"][0]["metadata"]["field"] == "agentId"

    # A created session's first turn starts the agent (ON_START runs).
    sid = body["session"]["id"]
    first = await http.post(
        "/api/v1/chat/send", json={"sessionId": sid, "message": "hi"}, headers=tenant.headers
    )
    assert first.status_code == 200, first.text
    assert first.json()["sessionId"] == sid
    assert "reset your password" in first.json()["response"]
    assert first.json()["traceEvents"][0]["type"] == "dsl_on_start"


async def test_list_sessions_counters_filters_and_pages(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, done = await conversation(http, tenant)
    open_ = (await turn(http, tenant, pid, "hello")).json()["sessionId"]
    listed = await http.get(f"/api/projects/{pid}/sessions", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["success"], body["total"], body["offset"], body["limit"]) == (True, 2, 0, 50)
    assert [s["id"] for s in body["sessions"]] == [open_, done]  # newest first
    first = body["sessions"][1]
    assert set(first) >= SESSION_FIELDS
    async with app.db.read() as uow:
        row = await uow.get(AgentSession, done)
    assert row is not None
    assert first["runtimeSessionId"] == row.runtime_session_id
    assert (first["status"], first["channel"], first["agentName"]) == (
        "ended",
        "api",
        row.agent_name,
    )
    assert first["messageCount"] == row.message_count == 6
    assert first["traceEventCount"] == row.trace_event_count
    assert first["tokenCount"] == row.token_count
    assert first["estimatedCost"] == row.estimated_cost
    assert first["errorCount"] == row.error_count == 0
    assert isinstance(first["durationMs"], int | float) and first["durationMs"] >= 0

    ended = await http.get(f"/api/projects/{pid}/sessions?status=ended", headers=tenant.headers)
    assert [s["id"] for s in ended.json()["sessions"]] == [done]
    active = await http.get(f"/api/projects/{pid}/sessions?status=active", headers=tenant.headers)
    assert [s["id"] for s in active.json()["sessions"]] == [open_]
    voice = await http.get(f"/api/projects/{pid}/sessions?channel=voice", headers=tenant.headers)
    assert voice.json()["total"] == 0 and voice.json()["sessions"] == []
    page = await http.get(f"/api/projects/{pid}/sessions?limit=1&offset=1", headers=tenant.headers)
    assert page.json()["total"] == 2 and [s["id"] for s in page.json()["sessions"]] == [done]
    past = await http.get(f"/api/projects/{pid}/sessions?offset=5", headers=tenant.headers)
    assert past.status_code == 200 and past.json()["sessions"] == []
    edge = await http.get(f"/api/projects/{pid}/sessions?limit=200", headers=tenant.headers)
    assert edge.status_code == 200 and edge.json()["limit"] == 200

    for query, field in (
        ("limit=201", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("status=paused", "status"),
    ):
        bad = await http.get(f"/api/projects/{pid}/sessions?{query}", headers=tenant.headers)
        assert bad.status_code == 400, (query, bad.text)
        assert field in bad.json()["message"]
        assert bad.json()["details"][0]["metadata"]["field"] == field


async def test_get_traces_metrics_transcript(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, sid = await conversation(http, tenant)
    got = await http.get(f"/api/projects/{pid}/sessions/{sid}", headers=tenant.headers)
    assert got.status_code == 200, got.text
    session = got.json()["session"]
    assert set(session) >= SESSION_FIELDS
    assert (session["status"], session["outcome"], session["turnCount"]) == (
        "ended",
        "selfService",
        3,
    )
    assert got.json()["state"]["email"] == "me@example.com"

    traces = await http.get(f"/api/projects/{pid}/sessions/{sid}/traces", headers=tenant.headers)
    assert traces.status_code == 200, traces.text
    events = traces.json()["traces"]
    assert traces.json()["total"] == len(events) == session["traceEventCount"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "dsl_on_start" and "metrics" not in traces.json()
    assert set(events[0]) >= {"id", "type", "decisionKind", "spanId", "timestamp", "data"}

    tools = await http.get(
        f"/api/projects/{pid}/sessions/{sid}/traces?eventType=tool_call", headers=tenant.headers
    )
    assert {e["type"] for e in tools.json()["traces"]} == {"tool_call"}
    assert tools.json()["total"] == 2
    span = tools.json()["traces"][0]["spanId"]
    by_span = await http.get(
        f"/api/projects/{pid}/sessions/{sid}/traces?spanId={span}", headers=tenant.headers
    )
    assert span in {e["spanId"] for e in by_span.json()["traces"]}
    assert all(span in (e["spanId"], e["parentSpanId"]) for e in by_span.json()["traces"])
    kinds = {e["decisionKind"] for e in events if e["decisionKind"]}
    assert kinds, events  # the password-reset flow records routing decisions
    kind = sorted(kinds)[0]
    decided = await http.get(
        f"/api/projects/{pid}/sessions/{sid}/traces?decisionKind={kind}",
        headers=tenant.headers,
    )
    assert {e["decisionKind"] for e in decided.json()["traces"]} == {kind}
    with_metrics = await http.get(
        f"/api/projects/{pid}/sessions/{sid}/traces?include=metrics&limit=1",
        headers=tenant.headers,
    )
    assert len(with_metrics.json()["traces"]) == 1
    assert with_metrics.json()["metrics"]["toolCalls"] == 2
    bad = await http.get(
        f"/api/projects/{pid}/sessions/{sid}/traces?include=everything", headers=tenant.headers
    )
    assert bad.status_code == 400

    metrics = await http.get(f"/api/projects/{pid}/sessions/{sid}/metrics", headers=tenant.headers)
    assert metrics.status_code == 200, metrics.text
    m = metrics.json()["metrics"]
    assert (m["toolCalls"], m["toolErrors"], m["errors"], m["turns"], m["messages"]) == (
        2,
        0,
        0,
        3,
        6,
    )
    assert m["traceEvents"] == session["traceEventCount"]
    assert set(m["latency"]) == {"avgMs", "p50Ms", "p95Ms", "p99Ms", "maxMs"}
    assert m["feedback"] == {"positive": 0, "negative": 0, "total": 0}
    assert m["tokens"]["totalTokens"] == m["tokens"]["inputTokens"] + m["tokens"]["outputTokens"]

    transcript = await http.get(f"/api/v1/sessions/{sid}/transcripts", headers=tenant.headers)
    assert transcript.status_code == 200, transcript.text
    messages = transcript.json()["messages"]
    assert transcript.json()["success"] is True
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert messages[0]["content"] == "I forgot my password"
    assert all(set(m) == {"id", "role", "content", "timestamp"} for m in messages)
    async with app.db.read() as uow:
        stored = (
            await uow.exec(
                select(SessionMessage)
                .where(SessionMessage.session_id == sid)
                .order_by(col(SessionMessage.seq))
            )
        ).all()
    assert [m["id"] for m in messages] == [m.id for m in stored]


async def test_model_calls_show_in_metrics(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    source = 'AGENT: Helper\nGOAL: "Answer questions"\nINSTRUCTIONS: "Be brief."\n'
    pid = await agent_project(http, tenant, source, "Helper")
    sid = (await turn(http, tenant, pid, "What is 2+2?")).json()["sessionId"]
    await turn(http, tenant, pid, "And 3+3?", sessionId=sid)
    metrics = (
        await http.get(f"/api/projects/{pid}/sessions/{sid}/metrics", headers=tenant.headers)
    ).json()["metrics"]
    assert metrics["llmCalls"] >= 2
    assert metrics["byModel"][0]["requests"] == metrics["llmCalls"]
    assert metrics["byModel"][0]["provider"] == "local"
    session = (
        await http.get(f"/api/projects/{pid}/sessions/{sid}", headers=tenant.headers)
    ).json()["session"]
    assert metrics["tokens"]["totalTokens"] == session["tokenCount"] > 0


async def test_feedback_one_per_message_per_rater(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, sid = await conversation(http, tenant)
    messages = (
        await http.get(f"/api/v1/sessions/{sid}/transcripts", headers=tenant.headers)
    ).json()["messages"]
    reply = messages[1]["id"]
    first = await http.post(
        "/api/v1/feedback",
        json={"sessionId": sid, "messageId": reply, "rating": "positive", "comment": "great"},
        headers=tenant.headers,
    )
    assert first.status_code == 200, first.text
    assert first.json()["success"] is True and first.json()["replaced"] is False
    again = await http.post(
        "/api/v1/feedback",
        json={"sessionId": sid, "messageId": reply, "rating": "negative", "comment": "x" * 500},
        headers=tenant.headers,
    )
    assert again.json()["replaced"] is True
    assert again.json()["feedbackId"] == first.json()["feedbackId"]
    other_key = await http.post(
        "/api/keys",
        json={"name": "rater", "scopes": ["session:execute", "session:read"]},
        headers=tenant.headers,
    )
    rater = {"Authorization": f"Bearer {other_key.json()['secret']}"}
    second_rater = await http.post(
        "/api/v1/feedback",
        json={"sessionId": sid, "messageId": messages[3]["id"], "rating": "positive"},
        headers=rater,
    )
    assert second_rater.status_code == 200
    metrics = (
        await http.get(f"/api/projects/{pid}/sessions/{sid}/metrics", headers=tenant.headers)
    ).json()["metrics"]
    assert metrics["feedback"] == {"positive": 1, "negative": 1, "total": 2}

    bad = await http.post(
        "/api/v1/feedback",
        json={"sessionId": sid, "messageId": reply, "rating": "meh"},
        headers=tenant.headers,
    )
    assert bad.status_code == 400 and bad.json()["details"][0]["metadata"]["field"] == "rating"
    unknown = await http.post(
        "/api/v1/feedback",
        json={"sessionId": sid, "messageId": "msg_nope", "rating": "positive"},
        headers=tenant.headers,
    )
    assert unknown.status_code == 404 and unknown.json()["message"] == "Message not found"


async def test_reset_keeps_history_and_restarts(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, sid = await conversation(http, tenant)
    reset = await http.post(
        f"/api/projects/{pid}/sessions/{sid}/reset", json={}, headers=tenant.headers
    )
    assert reset.status_code == 200, reset.text
    session = reset.json()["session"]
    assert (session["status"], session["outcome"], session["endedAt"]) == ("active", "", "")
    assert session["messageCount"] == 6  # history stays
    got = (await http.get(f"/api/projects/{pid}/sessions/{sid}", headers=tenant.headers)).json()
    assert "email" not in got["state"]
    again = await turn(http, tenant, pid, "hello again", sessionId=sid)
    assert again.status_code == 200, again.text
    assert "reset your password" in again.json()["response"]  # ON_START ran again
    transcript = (
        await http.get(f"/api/v1/sessions/{sid}/transcripts", headers=tenant.headers)
    ).json()["messages"]
    assert len(transcript) == 8


async def test_end_session(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid, sid = await conversation(http, tenant, complete=False)
    ended = await http.post(
        f"/api/projects/{pid}/sessions/{sid}/end", json={}, headers=tenant.headers
    )
    assert ended.status_code == 200, ended.text
    session = ended.json()["session"]
    assert (session["status"], session["outcome"], session["endReason"]) == (
        "ended",
        "dropOff",
        "ended",
    )
    refused = await turn(http, tenant, pid, "more", sessionId=sid)
    assert refused.status_code == 400


async def test_idle_sessions_end(app: App, http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    _pid, sid = await conversation(http, tenant, complete=False)
    _, done = await conversation(http, tenant)
    async with app.db.uow() as uow:
        await uow.execute(
            sa.update(AgentSession)
            .where(col(AgentSession.id).in_([sid, done]))
            .values(last_activity_at=utcnow() - timedelta(hours=2))
        )
    assert await app.idle_sessions.sweep() >= 1
    async with app.db.read() as uow:
        idle = await uow.get(AgentSession, sid)
        completed = await uow.get(AgentSession, done)
    assert idle is not None and completed is not None
    assert (idle.status, idle.outcome, idle.end_reason) == ("ended", "dropOff", "idle")
    assert (completed.outcome, completed.end_reason) == ("selfService", "complete")


async def test_attachments_upload_and_send(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, sid = await conversation(http, tenant, complete=False)
    pdf, png = tiny_pdf(), tiny_png()
    text = "Résumé: line one\nline two\n".encode()
    cases = [
        ("document.pdf", pdf, "application/pdf"),
        ("../../etc/pixel.png", png, "image/png"),
        ("notes.txt", text, "text/plain"),
        # The client's type and extension are not trusted: the bytes decide.
        ("fake.pdf", png, "image/png"),
        ("blob.bin", bytes(range(256)), "application/octet-stream"),
    ]
    ids = []
    for name, data, expected in cases:
        response = await upload(http, tenant, pid, sid, name, data, "application/pdf")
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"success", "attachmentId", "filename", "mimeType", "sizeBytes"}
        assert body["success"] is True and body["attachmentId"].startswith("att_")
        assert (body["mimeType"], body["sizeBytes"]) == (expected, len(data))
        ids.append(body["attachmentId"])
    assert (await upload(http, tenant, pid, sid, "../../etc/pixel.png", png)).json()[
        "filename"
    ] == "pixel.png"
    # Content-addressed under the data dir; identical bytes share a file.
    digest = hashlib.sha256(png).hexdigest()
    stored = app.sessions.files.path(digest)
    assert stored.read_bytes() == png
    assert stored.is_relative_to(app.settings.data_dir)

    sent = await http.post(
        "/api/v1/chat/send",
        json={
            "sessionId": sid,
            "message": "Please summarize this document",
            "attachmentIds": ids[:2],
        },
        headers=tenant.headers,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["sessionId"] == sid
    async with app.db.read() as uow:
        last_user = (
            await uow.exec(
                select(SessionMessage)
                .where(SessionMessage.session_id == sid, SessionMessage.role == "user")
                .order_by(col(SessionMessage.seq).desc())
            )
        ).first()
    assert last_user is not None and last_user.content == "Please summarize this document"
    assert json.loads(last_user.metadata_json)["attachmentIds"] == ids[:2]

    unknown = await http.post(
        "/api/v1/chat/send",
        json={"sessionId": sid, "message": "x", "attachmentIds": ["att_nope"]},
        headers=tenant.headers,
    )
    assert unknown.status_code == 404 and unknown.json()["message"] == "Attachment not found"
    # An attachment of another session of the same tenant is foreign too.
    _, other_sid = await conversation(http, tenant, complete=False)
    foreign = await http.post(
        "/api/v1/chat/send",
        json={"sessionId": other_sid, "message": "x", "attachmentIds": [ids[0]]},
        headers=tenant.headers,
    )
    assert foreign.status_code == 404


async def test_upload_errors(app: App, http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid, sid = await conversation(http, tenant, complete=False)
    url = f"/api/projects/{pid}/sessions/{sid}/attachments"
    not_multipart = await http.post(url, json={"file": "x"}, headers=tenant.headers)
    assert not_multipart.status_code == 400
    assert not_multipart.json()["details"][0]["metadata"]["field"] == "file"
    wrong_part = await http.post(
        url, files={"document": ("a.txt", b"hello", "text/plain")}, headers=tenant.headers
    )
    assert wrong_part.status_code == 400 and "`file` part" in wrong_part.json()["message"]
    empty = await http.post(
        url, files={"file": ("a.txt", b"", "text/plain")}, headers=tenant.headers
    )
    assert empty.status_code == 400
    # Over the 20 MB default: 413 from the server (the route's gateway limit is higher).
    limit = app.settings.attachment_max_bytes
    big = await upload(http, tenant, pid, sid, "big.bin", b"a" * (limit + 1))
    assert big.status_code == 413, big.text[:300]
    assert big.json()["details"][0]["reason"] == "ATTACHMENT_TOO_LARGE"
    assert "retry-after" not in big.headers
    # Exactly the limit passes (a 20 MB body through the gateway's per-route limit).
    exact = await upload(http, tenant, pid, sid, "exact.txt", b"a" * limit)
    assert exact.status_code == 200, exact.text[:300]
    assert exact.json()["sizeBytes"] == limit
    # Other routes keep the 8 MiB gateway limit.
    other = await http.post(
        "/api/v1/feedback", content=b"{" + b" " * (9 * 1024 * 1024) + b"}", headers=tenant.headers
    )
    assert other.status_code == 413


async def test_delete_removes_everything_but_usage(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    source = 'AGENT: Helper\nGOAL: "Answer questions"\n'
    pid = await agent_project(http, tenant, source, "Helper")
    sid = (await turn(http, tenant, pid, "What is 2+2?")).json()["sessionId"]
    unique = b"unique bytes for the delete test " + sid.encode()
    att = (await upload(http, tenant, pid, sid, "u.txt", unique)).json()["attachmentId"]
    shared = (await upload(http, tenant, pid, sid, "p.png", tiny_png())).json()["attachmentId"]
    _, keeper = await conversation(http, tenant, complete=False)
    listed = await http.get(f"/api/v1/sessions/{keeper}/transcripts", headers=tenant.headers)
    assert listed.status_code == 200
    async with app.db.read() as uow:
        keeper_row = await uow.get(AgentSession, keeper)
    assert keeper_row is not None
    kept = await upload(http, tenant, keeper_row.project_id, keeper, "p.png", tiny_png())
    assert kept.status_code == 200
    unique_path = app.sessions.files.path(hashlib.sha256(unique).hexdigest())
    shared_path = app.sessions.files.path(hashlib.sha256(tiny_png()).hexdigest())
    assert unique_path.exists() and shared_path.exists()

    deleted = await http.delete(f"/api/projects/{pid}/sessions/{sid}", headers=tenant.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"success": True, "id": sid}
    assert not unique_path.exists()
    assert shared_path.exists()  # another session's attachment has the same content
    for path in (f"/api/projects/{pid}/sessions/{sid}", f"/api/v1/sessions/{sid}/transcripts"):
        gone = await http.get(path, headers=tenant.headers)
        assert gone.status_code == 404 and gone.json()["message"] == "Session not found"
    again = await http.delete(f"/api/projects/{pid}/sessions/{sid}", headers=tenant.headers)
    assert again.status_code == 404
    async with app.db.read() as uow:
        for model in (SessionMessage, TraceEventRecord, SessionAttachment):
            left = (await uow.exec(select(model).where(model.session_id == sid))).all()
            assert left == [], model
        rows = select(SessionAttachment).where(col(SessionAttachment.id).in_([att, shared]))
        assert (await uow.exec(rows)).all() == []  # both attachment rows went with it
        usage = (await uow.exec(select(UsageRecord).where(UsageRecord.session_id == sid))).all()
    assert usage, "usage records stay for billing"


async def test_cross_tenant_is_404_everywhere(
    http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid, sid = await conversation(http, tenant, complete=False)
    att = (await upload(http, tenant, pid, sid, "a.txt", b"hello")).json()["attachmentId"]
    msg = (await http.get(f"/api/v1/sessions/{sid}/transcripts", headers=tenant.headers)).json()[
        "messages"
    ][0]["id"]
    other = other_tenant.headers
    base = f"/api/projects/{pid}/sessions"
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", base, None),
        ("POST", base, {"agentId": "Password_Reset"}),
        ("GET", f"{base}/{sid}", None),
        ("DELETE", f"{base}/{sid}", None),
        ("POST", f"{base}/{sid}/reset", {}),
        ("POST", f"{base}/{sid}/end", {}),
        ("GET", f"{base}/{sid}/traces", None),
        ("GET", f"{base}/{sid}/metrics", None),
        ("GET", f"/api/v1/sessions/{sid}/transcripts", None),
        ("POST", "/api/v1/feedback", {"sessionId": sid, "messageId": msg, "rating": "positive"}),
        ("POST", "/api/v1/chat/send", {"sessionId": sid, "message": "hi"}),
    ]
    for method, path, body in calls:
        response = await http.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (method, path, response.text)
    up = await upload(http, other_tenant, pid, sid, "a.txt", b"x")
    assert up.status_code == 404
    # The other tenant's own session cannot use this tenant's attachment either.
    _, theirs = await conversation(http, other_tenant, complete=False)
    foreign = await http.post(
        "/api/v1/chat/send",
        json={"sessionId": theirs, "message": "x", "attachmentIds": [att]},
        headers=other,
    )
    assert foreign.status_code == 404
    # Still there for its owner.
    assert (await http.get(f"{base}/{sid}", headers=tenant.headers)).status_code == 200


async def test_scopes(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid, sid = await conversation(http, tenant, complete=False)
    reader = await http.post(
        "/api/keys", json={"name": "reader", "scopes": ["session:read"]}, headers=tenant.headers
    )
    headers = {"Authorization": f"Bearer {reader.json()['secret']}"}
    assert (await http.get(f"/api/projects/{pid}/sessions", headers=headers)).status_code == 200
    for method, path in (
        ("DELETE", f"/api/projects/{pid}/sessions/{sid}"),
        ("POST", f"/api/projects/{pid}/sessions/{sid}/reset"),
        ("POST", f"/api/projects/{pid}/sessions"),
    ):
        refused = await http.request(method, path, json={}, headers=headers)
        assert refused.status_code == 403, (method, path)
        assert refused.json()["message"] == "Missing required scope: session:execute"
