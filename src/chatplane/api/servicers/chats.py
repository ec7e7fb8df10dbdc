"""chatplane.chatapi.v1.ChatApiService (the simple Chat API): protobuf <-> chats.

Publishable keys may call these methods only (`PUBLIC_METHODS`, enforced by the
interceptor), and see only the chats they created.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format

from chatplane.api import call
from chatplane.chatapi.v1 import chat_api_service_pb2 as pb
from chatplane.chatapi.v1 import chat_api_service_pb2_grpc as pb_grpc
from chatplane.iam import scopes
from chatplane.iam.auth import Principal
from chatplane.kit.clock import iso
from chatplane.sessions.chats import ChatApi, ChatInfo
from chatplane.sessions.types import TranscriptEntry

_SERVICE = "/chatplane.chatapi.v1.ChatApiService/"
SCOPES = {
    _SERVICE + "CreateChat": scopes.SESSION_EXECUTE,
    _SERVICE + "ListChats": scopes.SESSION_READ,
    _SERVICE + "GetChat": scopes.SESSION_READ,
    _SERVICE + "DeleteChat": scopes.SESSION_EXECUTE,
    _SERVICE + "CreateMessage": scopes.SESSION_EXECUTE,
    _SERVICE + "ListMessages": scopes.SESSION_READ,
}
# The only methods a publishable (`pk_live_`) key may call.
PUBLIC_METHODS = frozenset(SCOPES)

Context = grpc.aio.ServicerContext[Any, Any]


def _owner(principal: Principal) -> str | None:
    """Publishable keys see their own chats; secret keys every chat of the tenant."""
    return principal.subject if principal.publishable else None


def to_message(m: TranscriptEntry, chat_id: str | None = None) -> pb.ChatMessage:
    out = pb.ChatMessage(id=m.id, content=m.content, role=m.role, created_at=iso(m.created_at))
    if chat_id is not None:
        out.chat_id = chat_id
    return out


def to_chat(chat: ChatInfo) -> pb.Chat:
    return pb.Chat(
        id=chat.id,
        agent_id=chat.agent_id,
        team_id=chat.team_id,
        messages=[to_message(m) for m in chat.messages],
        created_at=iso(chat.created_at),
    )


class ChatApiServicer(pb_grpc.ChatApiServiceServicer):
    def __init__(self, chats: ChatApi) -> None:
        self._chats = chats

    async def CreateChat(self, request: pb.CreateChatRequest, context: Context) -> pb.Chat:
        principal = call.principal()
        chat = await self._chats.create(
            principal.tenant_id,
            principal.subject,
            agent_id=request.agent_id,
            user_id=request.user_id,
            metadata=json_format.MessageToDict(request.metadata),
        )
        return to_chat(chat)

    async def ListChats(
        self, request: pb.ListChatsRequest, context: Context
    ) -> pb.ListChatsResponse:
        principal = call.principal()
        chats = await self._chats.list_chats(
            principal.tenant_id,
            _owner(principal),
            user_id=request.user_id,
            agent_type=request.agent_type,
            limit=request.limit if request.HasField("limit") else None,
            offset=request.offset,
        )
        return pb.ListChatsResponse(
            chats=[
                pb.ChatSummary(
                    id=c.id, agent_id=c.agent_id, user_id=c.user_id, created_at=iso(c.created_at)
                )
                for c in chats
            ]
        )

    async def GetChat(self, request: pb.GetChatRequest, context: Context) -> pb.Chat:
        principal = call.principal()
        chat = await self._chats.get(principal.tenant_id, _owner(principal), request.chat_id)
        return to_chat(chat)

    async def DeleteChat(
        self, request: pb.DeleteChatRequest, context: Context
    ) -> pb.DeleteChatResponse:
        principal = call.principal()
        await self._chats.delete(principal.tenant_id, _owner(principal), request.chat_id)
        call.set_http_status(204)
        return pb.DeleteChatResponse()

    async def CreateMessage(
        self, request: pb.CreateMessageRequest, context: Context
    ) -> pb.ChatMessage:
        principal = call.principal()
        reply = await self._chats.send(
            principal.tenant_id,
            principal.scopes,
            _owner(principal),
            chat_id=request.chat_id,
            content=request.content,
            role=request.role,
        )
        return to_message(reply, request.chat_id)

    async def ListMessages(
        self, request: pb.ListMessagesRequest, context: Context
    ) -> pb.ListMessagesResponse:
        principal = call.principal()
        messages = await self._chats.messages(
            principal.tenant_id, _owner(principal), request.chat_id
        )
        return pb.ListMessagesResponse(messages=[to_message(m) for m in messages])
