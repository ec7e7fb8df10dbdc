"""The async engine, units of work, and migrations at start-up.

A unit of work is one SQLAlchemy `AsyncSession` (one transaction). Callers open it and
hand it to services, so several services can write in one transaction; repositories never
commit. ("Session" is a product noun here: conversations. The database kind is `uow`.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers don't block the writer; NORMAL sync is durable across app crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`; SQLite gets WAL and its data directory is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


UnitOfWork: TypeAlias = AsyncSession


class Database:
    """The engine and where units of work come from."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        # Loaded objects stay usable after commit.
        self._factory = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[UnitOfWork]:
        """A transaction that commits when the block ends normally, rolls back otherwise."""
        async with self._factory() as uow:
            yield uow
            await uow.commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work for reads only: nothing is committed."""
        async with self._factory() as uow:
            yield uow

    @asynccontextmanager
    async def within(self, uow: UnitOfWork | None) -> AsyncIterator[UnitOfWork]:
        """The caller's unit of work (it commits), or a new one that commits here."""
        if uow is not None:
            yield uow
            return
        async with self.uow() as own:
            yield own

    async def migrate(self) -> None:
        await migrate(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending Alembic migration."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's Alembic revision, None before the first migration."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
