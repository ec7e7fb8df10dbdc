"""Two replicas on one database: turns on one session never interleave.

Two App instances share the database but not their in-process locks, as two server
processes would. With PostgreSQL the advisory lock serializes their turns; with SQLite the
version-guarded write lets the loser fail cleanly ("Session busy") and nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from chatplane.app import App
from chatplane.errors import FailedPrecondition
from chatplane.iam import scopes
from chatplane.sessions.types import TurnRequest
from chatplane.storage.models import AgentSession, SessionMessage
from tests.conftest import make_settings
from tests.e2e.test_agent_turns import ASSISTANT

ALL = frozenset(scopes.ALL_SCOPES)


@pytest.fixture
async def replicas(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[App, App]]:
    if database_url.startswith("sqlite"):
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first = App(make_settings(tmp_path / "a", database_url, session_rate_limit_per_minute=0))
    second = App(make_settings(tmp_path / "b", database_url, session_rate_limit_per_minute=0))
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_turns_from_two_replicas_on_one_session(
    replicas: tuple[App, App], database_url: str
) -> None:
    first, second = replicas
    tenant = await first.iam.create_tenant("replicas")
    project = await first.projects.create(tenant.id, name="p")
    await first.agents.put(tenant.id, project.id, "Helper", ASSISTANT)
    opened = await first.turns.run(tenant.id, ALL, TurnRequest(project.id, "hello"))
    sid = opened.session_id

    async def turn(app: App, i: int) -> bool:
        try:
            await app.turns.run(tenant.id, ALL, TurnRequest(project.id, f"q{i}", session_id=sid))
        except FailedPrecondition as exc:
            assert exc.reason == "SESSION_BUSY"
            return False
        return True

    results = await asyncio.gather(*(turn(first if i % 2 else second, i) for i in range(6)))
    if not database_url.startswith("sqlite"):
        assert all(results)  # the advisory lock serialized them: none failed
    done = sum(results)
    assert done >= 1  # the first writer always wins
    async with first.db.read() as uow:
        row = await uow.get(AgentSession, sid)
        seqs = (
            await uow.exec(
                select(SessionMessage.seq)
                .where(SessionMessage.session_id == sid)
                .order_by(col(SessionMessage.seq))
            )
        ).all()
    assert row is not None
    # Every successful turn is there exactly once; nothing interleaved or lost.
    assert row.turn_count == 1 + done
    assert row.message_count == 2 * (1 + done)
    assert list(seqs) == list(range(1, 2 * (1 + done) + 1))
