"""Storage: migrations match the models, and upgrade/downgrade both work."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from chatplane.storage.db import _alembic_config, create_engine, current_revision, migrate


async def test_migrations_match_models_and_round_trip(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        assert await current_revision(engine) == "0006"

        def diff(conn: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []  # no schema change without a migration

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0001"))
        assert await current_revision(engine) == "0001"
        await migrate(engine)
        assert await current_revision(engine) == "0006"
    finally:
        await engine.dispose()
