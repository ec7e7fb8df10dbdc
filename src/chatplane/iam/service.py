"""Tenants, API keys and JWT clients: the use cases."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Sequence

from chatplane.errors import InvalidArgument, NotFound, PermissionDenied
from chatplane.iam import scopes as scope_names
from chatplane.iam.repository import (
    ApiKeyRepository,
    CredentialLookup,
    JwtClientRepository,
    TenantRepository,
)
from chatplane.iam.security import (
    SecretBox,
    hash_secret,
    new_api_key_secret,
    new_publishable_secret,
)
from chatplane.iam.types import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    ApiKeyInfo,
    Bootstrap,
    CreatedClient,
    CreatedKey,
    normalize_origin,
)
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.storage.db import Database, UnitOfWork
from chatplane.storage.models import ApiKey, JwtClient, Tenant

DEFAULT_TENANT_NAME = "default"


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


def _within(granter: frozenset[str] | None, scopes: Sequence[str], action: str) -> None:
    """A caller may grant or revoke only scopes it holds itself (`granter` None: the
    operator's CLI, which holds them all)."""
    if granter is None:
        return
    missing = sorted(scope_names.parse(" ".join(scopes)) - granter)
    if missing:
        raise PermissionDenied(
            f"Cannot {action} scopes you do not hold: {', '.join(missing)}",
            reason="SCOPE_ESCALATION",
            metadata={"missing_scopes": " ".join(missing)},
        )


PUBLISHABLE_SCOPES = (scope_names.SESSION_READ, scope_names.SESSION_EXECUTE)
MAX_ORIGINS = 20
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?")


def _validate_origins(origins: Sequence[str]) -> list[str]:
    """1 to 20 origins, each `http(s)://host[:port]` (no path), normalized."""
    cleaned = list(dict.fromkeys(normalize_origin(o) for o in origins if o.strip()))
    if not 1 <= len(cleaned) <= MAX_ORIGINS:
        raise InvalidArgument(
            f"A publishable key needs 1 to {MAX_ORIGINS} allowedOrigins", field="allowedOrigins"
        )
    for origin in cleaned:
        if not _ORIGIN.fullmatch(origin):
            raise InvalidArgument(
                "Each allowed origin must be scheme://host[:port], e.g. https://shop.example.com",
                field="allowedOrigins",
            )
    return cleaned


def _validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidArgument("name must be 1 to 200 characters", field="name")
    return name


class IamService:
    """Tenants, keys and clients. Each method joins the caller's unit of work if given."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        on_tenant_change: Callable[[str], None] | None = None,
    ) -> None:
        self._db = db
        self._box = box
        self._on_tenant_change = on_tenant_change

    async def create_tenant(self, name: str, *, uow: UnitOfWork | None = None) -> Tenant:
        tenant = Tenant(id=cuid(), name=_validate_name(name))
        async with self._db.within(uow) as tx:
            TenantRepository(tx).add(tenant)
        return tenant

    async def default_tenant_id(self) -> str:
        """The first tenant (bootstrap always creates one)."""
        async with self._db.read() as tx:
            tenant = await TenantRepository(tx).first()
        if tenant is None:
            raise NotFound("No tenant yet: start the server once (chatplane run)")
        return tenant.id

    async def configure_tenant(
        self,
        tenant_id: str,
        *,
        anthropic_api_key: str | None = None,
        default_model: str | None = None,
    ) -> Tenant:
        """Set the tenant's own Anthropic key (stored encrypted; "" clears it) and default
        model. None leaves a setting as it is."""
        async with self._db.uow() as tx:
            tenant = await TenantRepository(tx).get(tenant_id)
            if tenant is None:
                raise NotFound("Tenant not found")
            if anthropic_api_key is not None:
                tenant.anthropic_key_encrypted = (
                    self._box.encrypt(anthropic_api_key) if anthropic_api_key else ""
                )
            if default_model is not None:
                tenant.default_model = default_model.strip()
        if self._on_tenant_change is not None:
            self._on_tenant_change(tenant_id)
        return tenant

    async def bootstrap(self, bootstrap_secret: str | None) -> Bootstrap | None:
        """On an empty database: a default tenant and an admin key. Else make sure the
        bootstrap key (if configured) exists. Returns what was created, or None."""
        async with self._db.uow() as tx:
            tenants = TenantRepository(tx)
            tenant = await tenants.first()
            if tenant is not None:
                if (
                    bootstrap_secret
                    and await CredentialLookup(tx).key_by_hash(hash_secret(bootstrap_secret))
                    is None
                ):
                    tx.add(self._admin_key(tenant.id, bootstrap_secret))
                return None
            tenant = Tenant(id=cuid(), name=DEFAULT_TENANT_NAME)
            tenants.add(tenant)
            await tx.flush()
            secret = bootstrap_secret or new_api_key_secret()
            tx.add(self._admin_key(tenant.id, secret))
        return Bootstrap(tenant.id, None if bootstrap_secret else secret)

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

    async def create_key(
        self,
        tenant_id: str,
        name: str,
        scopes: Sequence[str],
        *,
        granter: frozenset[str] | None = None,
        key_type: str = "",
        allowed_origins: Sequence[str] = (),
    ) -> CreatedKey:
        """A new key. `granter`: the caller's scopes; a key grants no more than those.

        `key_type` `publishable` makes a `pk_live_` key for the Chat API: scopes at most
        session:read and session:execute (both when none are given), bound to
        `allowed_origins` (1 to 20)."""
        kind = key_type or SECRET_KEY
        origins: list[str] = []
        if kind == PUBLISHABLE_KEY:
            granted = _validate_scopes(list(scopes) or list(PUBLISHABLE_SCOPES))
            extra = sorted(set(granted) - set(PUBLISHABLE_SCOPES))
            if extra:
                raise InvalidArgument(
                    "A publishable key may hold only session:read and session:execute",
                    field="scopes",
                )
            origins = _validate_origins(allowed_origins)
            secret = new_publishable_secret()
        elif kind == SECRET_KEY:
            if allowed_origins:
                raise InvalidArgument(
                    "allowedOrigins is only for publishable keys", field="allowedOrigins"
                )
            granted = _validate_scopes(scopes)
            secret = new_api_key_secret()
        else:
            raise InvalidArgument("type must be secret or publishable", field="type")
        _within(granter, granted, "grant")
        key = ApiKey(
            id=f"key_{cuid()}",
            tenant_id=tenant_id,
            name=_validate_name(name),
            prefix=secret[:12],
            secret_hash=hash_secret(secret),
            scopes=" ".join(granted),
            type=kind,
            allowed_origins=json.dumps(origins),
        )
        async with self._db.uow() as tx:
            if await TenantRepository(tx).get(tenant_id) is None:
                raise NotFound("Tenant not found")
            ApiKeyRepository(tx, tenant_id).add(key)
        return CreatedKey(ApiKeyInfo.of(key), secret)

    async def list_keys(self, tenant_id: str) -> list[ApiKeyInfo]:
        async with self._db.read() as tx:
            return [ApiKeyInfo.of(k) for k in await ApiKeyRepository(tx, tenant_id).list()]

    async def get_key(self, tenant_id: str, key_id: str) -> ApiKeyInfo:
        async with self._db.read() as tx:
            key = await ApiKeyRepository(tx, tenant_id).get(key_id)
        if key is None:
            raise NotFound("API key not found")
        return ApiKeyInfo.of(key)

    async def revoke_key(
        self, tenant_id: str, key_id: str, *, granter: frozenset[str] | None = None
    ) -> ApiKeyInfo:
        """Revoke a key; with `granter`, only a key whose scopes the caller holds too."""
        async with self._db.uow() as tx:
            key = await ApiKeyRepository(tx, tenant_id).get(key_id)
            if key is None:
                raise NotFound("API key not found")
            _within(granter, key.scopes.split(), "revoke a key with")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
        return ApiKeyInfo.of(key)

    async def create_client(
        self,
        tenant_id: str,
        name: str,
        scopes: Sequence[str],
        *,
        granter: frozenset[str] | None = None,
    ) -> CreatedClient:
        """A JWT client: returns it with its signing secret (shown once). Same rule as
        keys: a client grants no more than its creator's scopes."""
        granted = _validate_scopes(scopes)
        _within(granter, granted, "grant")
        secret = secrets.token_urlsafe(32)
        client = JwtClient(
            id=f"cs-{cuid()}",
            tenant_id=tenant_id,
            name=_validate_name(name),
            secret_encrypted=self._box.encrypt(secret),
            scopes=" ".join(granted),
        )
        async with self._db.uow() as tx:
            if await TenantRepository(tx).get(tenant_id) is None:
                raise NotFound("Tenant not found")
            JwtClientRepository(tx, tenant_id).add(client)
        return CreatedClient(client.id, tenant_id, tuple(granted), secret)
