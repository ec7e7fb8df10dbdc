"""IAM domain types, as the rest of the code sees them (not storage rows)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from chatplane.storage.models import ApiKey

SECRET_KEY = "secret"  # noqa: S105 - a key type, not a secret
PUBLISHABLE_KEY = "publishable"


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, without a trailing slash ("" when empty)."""
    return origin.strip().rstrip("/").lower()


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key without its secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    type: str = SECRET_KEY  # secret | publishable
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyInfo:
        return cls(
            row.id,
            row.name,
            tuple(row.scopes.split()),
            row.prefix,
            row.created_at,
            row.revoked_at,
            row.type or SECRET_KEY,
            origins_of(row),
        )


def origins_of(row: ApiKey) -> tuple[str, ...]:
    """A key's allowed origins (stored as a JSON list)."""
    try:
        value = json.loads(row.allowed_origins or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its secret, which is never available again."""

    key: ApiKeyInfo
    secret: str


@dataclass(frozen=True, slots=True)
class CreatedClient:
    """A new JWT client and its signing secret (shown once)."""

    id: str
    tenant_id: str
    scopes: tuple[str, ...]
    secret: str


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What the first start created."""

    tenant_id: str
    admin_secret: str | None  # None when the key came from CHATPLANE_BOOTSTRAP_API_KEY
