"""Tenants, API keys and JWT clients in storage."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from chatplane.storage.models import ApiKey, JwtClient, Tenant
from chatplane.storage.repository import Repository, TenantScopedRepository


class TenantRepository(Repository):
    async def get(self, tenant_id: str) -> Tenant | None:
        return await self.uow.get(Tenant, tenant_id)

    async def first(self) -> Tenant | None:
        result = await self.uow.exec(select(Tenant).order_by(col(Tenant.created_at)).limit(1))
        return result.first()

    def add(self, tenant: Tenant) -> None:
        self.uow.add(tenant)


class ApiKeyRepository(TenantScopedRepository[ApiKey]):
    model = ApiKey

    async def list(self) -> Sequence[ApiKey]:
        result = await self.uow.exec(
            self.select().order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
        )
        return result.all()


class CredentialLookup(Repository):
    """Lookups before the tenant is known: by key hash, by JWT appId."""

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        result = await self.uow.exec(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
        return result.first()

    async def client(self, app_id: str) -> JwtClient | None:
        return await self.uow.get(JwtClient, app_id)


class JwtClientRepository(TenantScopedRepository[JwtClient]):
    model = JwtClient
