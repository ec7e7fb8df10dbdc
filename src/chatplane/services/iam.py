"""Tenants, API keys and JWT clients."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from chatplane.errors import InvalidArgument, NotFound
from chatplane.ids import cuid, utcnow
from chatplane.services import scopes as scope_names
from chatplane.services.security import SecretBox, hash_secret, new_api_key_secret
from chatplane.storage.models import ApiKey, JwtClient, Tenant
from chatplane.storage.repositories import ApiKeyRepository, JwtClientRepository, TenantRepository

DEFAULT_TENANT_NAME = "default"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its secret, which is never available again."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What the first start created."""

    tenant: Tenant
    admin_secret: str | None  # None when the key came from CHATPLANE_BOOTSTRAP_API_KEY


def _validate_scopes(requested: Sequence[str]) -> list[str]:
    if not requested:
        raise InvalidArgument("scopes must name at least one scope", field="scopes")
    unknown = sorted(set(requested) - set(scope_names.ALL_SCOPES))
    if unknown:
        raise InvalidArgument(
            f"Unknown scope(s): {', '.join(unknown)}; known: {', '.join(scope_names.ALL_SCOPES)}",
            field="scopes",
        )
    return sorted(set(requested))


def _validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidArgument("name must be 1 to 200 characters", field="name")
    return name


class IamService:
    """Tenants, keys and clients. Owns its transactions."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        *,
        on_tenant_change: Callable[[str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._on_tenant_change = on_tenant_change

    async def create_tenant(self, name: str) -> Tenant:
        tenant = Tenant(id=cuid(), name=_validate_name(name))
        async with self._sessions() as session:
            TenantRepository(session).add(tenant)
            await session.commit()
        return tenant

    async def configure_tenant(
        self,
        tenant_id: str,
        *,
        anthropic_api_key: str | None = None,
        default_model: str | None = None,
    ) -> Tenant:
        """Set the tenant's own Anthropic key (stored encrypted; "" clears it) and default
        model. None leaves a setting as it is."""
        async with self._sessions() as session:
            tenant = await TenantRepository(session).get(tenant_id)
            if tenant is None:
                raise NotFound("Tenant not found")
            if anthropic_api_key is not None:
                tenant.anthropic_key_encrypted = (
                    self._box.encrypt(anthropic_api_key) if anthropic_api_key else ""
                )
            if default_model is not None:
                tenant.default_model = default_model.strip()
            await session.commit()
        if self._on_tenant_change is not None:
            self._on_tenant_change(tenant_id)
        return tenant

    async def bootstrap(self, bootstrap_secret: str | None) -> Bootstrap | None:
        """On an empty database: a default tenant and an admin key. Else make sure the
        bootstrap key (if configured) exists. Returns what was created, or None."""
        async with self._sessions() as session:
            tenants = TenantRepository(session)
            keys = ApiKeyRepository(session)
            tenant = await tenants.first()
            if tenant is not None:
                if bootstrap_secret and await keys.by_hash(hash_secret(bootstrap_secret)) is None:
                    keys.add(self._admin_key(tenant.id, bootstrap_secret))
                    await session.commit()
                return None
            tenant = Tenant(id=cuid(), name=DEFAULT_TENANT_NAME)
            tenants.add(tenant)
            await session.flush()
            secret = bootstrap_secret or new_api_key_secret()
            keys.add(self._admin_key(tenant.id, secret))
            await session.commit()
        return Bootstrap(tenant, None if bootstrap_secret else secret)

    @staticmethod
    def _admin_key(tenant_id: str, secret: str) -> ApiKey:
        return ApiKey(
            id=f"key_{cuid()}",
            tenant_id=tenant_id,
            name="admin (bootstrap)",
            prefix=secret[:12],
            secret_hash=hash_secret(secret),
            scopes=" ".join(scope_names.ALL_SCOPES),
        )

    async def create_key(self, tenant_id: str, name: str, scopes: Sequence[str]) -> CreatedKey:
        secret = new_api_key_secret()
        key = ApiKey(
            id=f"key_{cuid()}",
            tenant_id=tenant_id,
            name=_validate_name(name),
            prefix=secret[:12],
            secret_hash=hash_secret(secret),
            scopes=" ".join(_validate_scopes(scopes)),
        )
        async with self._sessions() as session:
            if await TenantRepository(session).get(tenant_id) is None:
                raise NotFound("Tenant not found")
            ApiKeyRepository(session).add(key)
            await session.commit()
        return CreatedKey(key, secret)

    async def list_keys(self, tenant_id: str) -> Sequence[ApiKey]:
        async with self._sessions() as session:
            return await ApiKeyRepository(session).list(tenant_id)

    async def get_key(self, tenant_id: str, key_id: str) -> ApiKey:
        async with self._sessions() as session:
            key = await ApiKeyRepository(session).get(tenant_id, key_id)
        if key is None:
            raise NotFound("API key not found")
        return key

    async def revoke_key(self, tenant_id: str, key_id: str) -> ApiKey:
        async with self._sessions() as session:
            key = await ApiKeyRepository(session).get(tenant_id, key_id)
            if key is None:
                raise NotFound("API key not found")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
                await session.commit()
        return key

    async def create_client(
        self, tenant_id: str, name: str, scopes: Sequence[str]
    ) -> tuple[JwtClient, str]:
        """A JWT client: returns it and its signing secret (shown once)."""
        secret = secrets.token_urlsafe(32)
        client = JwtClient(
            id=f"cs-{cuid()}",
            tenant_id=tenant_id,
            name=_validate_name(name),
            secret_encrypted=self._box.encrypt(secret),
            scopes=" ".join(_validate_scopes(scopes)),
        )
        async with self._sessions() as session:
            if await TenantRepository(session).get(tenant_id) is None:
                raise NotFound("Tenant not found")
            JwtClientRepository(session).add(client)
            await session.commit()
        return client, secret
