"""The simple Chat API (seed 002): a chat is a session of channel `chat` with one agent.

`owner` is the publishable key a caller uses (it sees only the chats it created), or
None for secret keys (every chat of the tenant). Another tenant's chat, another key's
chat, or a session that is not a chat is "Chat not found".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatplane.agents.checks import agent_not_found
from chatplane.errors import InvalidArgument, NotFound
from chatplane.kit.clock import utcnow
from chatplane.sessions.repository import MessageQueries, SessionQueries
from chatplane.sessions.service import SessionService
from chatplane.sessions.types import TranscriptEntry
from chatplane.sessions.views import page_bounds, to_entry
from chatplane.storage.db import Database
from chatplane.storage.models import AgentSession

CHANNEL = "chat"
DEFAULT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class ChatInfo:
    id: str
    agent_id: str
    team_id: str
    user_id: str
    created_at: datetime
    messages: tuple[TranscriptEntry, ...] = ()


def chat_not_found() -> NotFound:
    return NotFound("Chat not found", reason="CHAT_NOT_FOUND")


def _info(row: AgentSession, messages: tuple[TranscriptEntry, ...] = ()) -> ChatInfo:
    return ChatInfo(row.id, row.agent_id, row.tenant_id, row.user_id, row.created_at, messages)


class ChatApi:
    def __init__(self, db: Database, sessions: SessionService) -> None:
        self._db = db
        self._sessions = sessions

    async def create(
        self,
        tenant_id: str,
        owner: str,
        *,
        agent_id: str,
        user_id: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> ChatInfo:
        """A chat with the agent `agent_id`, in that agent's project."""
        if not agent_id:
            raise InvalidArgument("Invalid request: agentId is required", field="agentId")
        async with self._db.read() as uow:
            agent = await SessionQueries(uow, tenant_id).agent_by_id(agent_id)
        if agent is None:
            raise agent_not_found()
        info = await self._sessions.create(
            tenant_id,
            agent.project_id,
            agent_id,
            channel=CHANNEL,
            created_by=owner,
            user_id=user_id,
            metadata=metadata,
        )
        return ChatInfo(info.id, info.agent_id, tenant_id, info.user_id, info.created_at)

    async def list_chats(
        self,
        tenant_id: str,
        owner: str | None,
        *,
        user_id: str = "",
        agent_type: str = "",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ChatInfo]:
        size, skip = page_bounds(limit, offset, default=DEFAULT_LIMIT)
        async with self._db.read() as uow:
            rows, _ = await SessionQueries(uow, tenant_id).filtered(
                channel=CHANNEL,
                created_by=owner,
                user_id=user_id,
                agent_name=agent_type,
                limit=size,
                offset=skip,
            )
        return [_info(r) for r in rows]

    async def _chat(self, tenant_id: str, owner: str | None, chat_id: str) -> AgentSession:
        if not chat_id:
            raise InvalidArgument("Invalid request: chatId is required", field="chatId")
        async with self._db.read() as uow:
            row = await SessionQueries(uow, tenant_id).get(chat_id)
        if row is None or row.channel != CHANNEL or (owner is not None and row.created_by != owner):
            raise chat_not_found()
        return row

    async def get(self, tenant_id: str, owner: str | None, chat_id: str) -> ChatInfo:
        row = await self._chat(tenant_id, owner, chat_id)
        return _info(row, tuple(await self.messages(tenant_id, owner, chat_id, checked=row)))

    async def messages(
        self,
        tenant_id: str,
        owner: str | None,
        chat_id: str,
        *,
        checked: AgentSession | None = None,
    ) -> list[TranscriptEntry]:
        row = checked or await self._chat(tenant_id, owner, chat_id)
        async with self._db.read() as uow:
            return [to_entry(m) for m in await MessageQueries(uow, tenant_id).of_session(row.id)]

    async def delete(self, tenant_id: str, owner: str | None, chat_id: str) -> None:
        row = await self._chat(tenant_id, owner, chat_id)
        await self._sessions.delete(tenant_id, row.project_id, row.id)

    async def send(
        self,
        tenant_id: str,
        scopes: frozenset[str],
        owner: str | None,
        *,
        chat_id: str,
        content: str,
        role: str = "user",
    ) -> TranscriptEntry:
        """Runs the turn; returns the assistant's reply as stored."""
        if role not in ("", "user"):
            raise InvalidArgument("Invalid request: role must be user", field="role")
        if not content.strip():
            raise InvalidArgument(
                "Invalid request: content must be at least 1 character", field="content"
            )
        row = await self._chat(tenant_id, owner, chat_id)
        result = await self._sessions.send(
            tenant_id, scopes, session_id=row.id, message=content, project_id=row.project_id
        )
        if not result.response or len(result.message_ids) < 2:  # no reply was stored
            return TranscriptEntry("", "assistant", result.response, utcnow())
        # This turn's own reply, as stored (not re-read: another turn may follow it).
        return TranscriptEntry(
            result.message_ids[-1], "assistant", result.response, result.stored_at or utcnow()
        )
