"""SessionService and ChatApiService over gRPC against a real server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.api import httpbody_pb2

from chatplane.agent.v1 import agent_service_pb2 as apb
from chatplane.agent.v1 import agent_service_pb2_grpc as apb_grpc
from chatplane.app import App
from chatplane.chatapi.v1 import chat_api_service_pb2 as cpb
from chatplane.chatapi.v1 import chat_api_service_pb2_grpc as cpb_grpc
from chatplane.project.v1 import project_service_pb2 as ppb
from chatplane.project.v1 import project_service_pb2_grpc as ppb_grpc
from chatplane.session.v1 import session_service_pb2 as pb
from chatplane.session.v1 import session_service_pb2_grpc as pb_grpc
from tests.conftest import TenantKeys

RESET = (Path(__file__).resolve().parents[2] / "examples/agents/password-reset.abl").read_text()


async def project_with_agent(channel: grpc.aio.Channel, tenant: TenantKeys) -> tuple[str, str]:
    project = await ppb_grpc.ProjectServiceStub(channel).CreateProject(
        ppb.CreateProjectRequest(name="grpc"), metadata=tenant.metadata
    )
    agent = await apb_grpc.AgentServiceStub(channel).PutAgent(
        apb.PutAgentRequest(
            project_id=project.project.id, agent_name="Password_Reset", source=RESET
        ),
        metadata=tenant.metadata,
    )
    return project.project.id, agent.agent.id


def multipart(name: str, data: bytes) -> httpbody_pb2.HttpBody:
    boundary = "chatplane-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return httpbody_pb2.HttpBody(
        content_type=f"multipart/form-data; boundary={boundary}", data=body
    )


async def test_session_flow_over_grpc(
    app: App, channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    stub = pb_grpc.SessionServiceStub(channel)
    pid, agent_id = await project_with_agent(channel, tenant)
    created = await stub.CreateSession(
        pb.CreateSessionRequest(project_id=pid, agent=agent_id), metadata=tenant.metadata
    )
    sid = created.session.id
    assert created.session.agent_name == "Password_Reset"
    upload = await stub.UploadAttachment(
        pb.UploadAttachmentRequest(
            project_id=pid, session_id=sid, file=multipart("a.pdf", b"%PDF-1.4\n%%EOF\n")
        ),
        metadata=tenant.metadata,
    )
    assert upload.mime_type == "application/pdf" and upload.filename == "a.pdf"
    reply = await stub.SendMessage(
        pb.SendMessageRequest(session_id=sid, message="hi", attachment_ids=[upload.attachment_id]),
        metadata=tenant.metadata,
    )
    assert reply.session_id == sid and "reset your password" in reply.response
    listed = await stub.ListSessions(
        pb.ListSessionsRequest(project_id=pid), metadata=tenant.metadata
    )
    assert (listed.total, listed.limit, listed.sessions[0].id) == (1, 50, sid)
    assert listed.sessions[0].message_count == 2
    transcript = await stub.GetTranscript(
        pb.GetTranscriptRequest(session_id=sid), metadata=tenant.metadata
    )
    assert [m.role for m in transcript.messages] == ["user", "assistant"]
    feedback = await stub.SubmitFeedback(
        pb.SubmitFeedbackRequest(
            session_id=sid, message_id=transcript.messages[1].id, rating="positive"
        ),
        metadata=tenant.metadata,
    )
    assert feedback.success and not feedback.replaced
    metrics = await stub.GetSessionMetrics(
        pb.GetSessionMetricsRequest(project_id=pid, session_id=sid), metadata=tenant.metadata
    )
    assert metrics.metrics.feedback.positive == 1 and metrics.metrics.turns == 1

    with pytest.raises(grpc.aio.AioRpcError) as too_big:
        await stub.UploadAttachment(
            pb.UploadAttachmentRequest(
                project_id=pid,
                session_id=sid,
                file=multipart("big", b"x" * (app.settings.attachment_max_bytes + 1)),
            ),
            metadata=tenant.metadata,
        )
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as bad_limit:
        await stub.ListSessions(
            pb.ListSessionsRequest(project_id=pid, limit=500), metadata=tenant.metadata
        )
    assert bad_limit.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    deleted = await stub.DeleteSession(
        pb.DeleteSessionRequest(project_id=pid, session_id=sid), metadata=tenant.metadata
    )
    assert deleted.id == sid
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetSession(
            pb.GetSessionRequest(project_id=pid, session_id=sid), metadata=tenant.metadata
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_publishable_key_over_grpc(
    app: App, channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    pid, agent_id = await project_with_agent(channel, tenant)
    created = await app.iam.create_key(
        tenant.tenant_id,
        "web",
        [],
        key_type="publishable",
        allowed_origins=["https://shop.example.com"],
    )
    key = (("authorization", f"Bearer {created.secret}"), ("origin", "https://shop.example.com"))
    chats = cpb_grpc.ChatApiServiceStub(channel)
    chat = await chats.CreateChat(cpb.CreateChatRequest(agent_id=agent_id), metadata=key)
    reply = await chats.CreateMessage(
        cpb.CreateMessageRequest(chat_id=chat.id, content="hi"), metadata=key
    )
    assert reply.role == "assistant" and reply.chat_id == chat.id
    deleted = await chats.DeleteChat(cpb.DeleteChatRequest(chat_id=chat.id), metadata=key)
    assert deleted == cpb.DeleteChatResponse()  # gRPC clients see a plain OK
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pb_grpc.SessionServiceStub(channel).ListSessions(
            pb.ListSessionsRequest(project_id=pid), metadata=key
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as no_origin:
        await chats.ListChats(cpb.ListChatsRequest(), metadata=key[:1])
    assert no_origin.value.code() == grpc.StatusCode.PERMISSION_DENIED
