"""Who is calling: API keys (`Authorization: Bearer`, `X-API-Key`) and JWTs signed by a
registered client app (`auth:` header, claim `appId`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from chatplane.errors import PermissionDenied, Unauthenticated
from chatplane.iam import scopes as scope_names
from chatplane.iam.repository import CredentialLookup
from chatplane.iam.security import SecretBox, hash_secret
from chatplane.iam.types import PUBLISHABLE_KEY, SECRET_KEY, normalize_origin, origins_of
from chatplane.kit.cache import TtlCache
from chatplane.storage.db import Database


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    tenant_id: str
    subject: str  # key id or JWT client id
    scopes: frozenset[str]
    key_type: str = SECRET_KEY
    allowed_origins: tuple[str, ...] = ()

    @property
    def publishable(self) -> bool:
        return self.key_type == PUBLISHABLE_KEY

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(f"Missing required scope: {scope}", reason="MISSING_SCOPE")

    def require_route(self, *, public_route: bool, origin: str) -> None:
        """A publishable key reaches only the public (Chat API) routes, and only from one
        of its allowed origins (a browser always sends `Origin` there). Secret keys and
        JWT clients: no restriction."""
        if not self.publishable:
            return
        if not public_route:
            raise PermissionDenied(
                "Publishable keys may only use the Chat API", reason="PUBLISHABLE_KEY_NOT_ALLOWED"
            )
        if normalize_origin(origin) not in self.allowed_origins:
            raise PermissionDenied("Origin not allowed for this key", reason="ORIGIN_NOT_ALLOWED")


class Authenticator:
    """Resolves request headers to a Principal.

    Key lookups are cached for `cache_seconds` so the hot path skips the database;
    revoking a key through this server evicts it at once, other replicas within the TTL.
    """

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        cache_seconds: float = 5.0,
        jwt_max_lifetime: float = 86_400,
    ) -> None:
        self._db = db
        self._box = box
        # A JWT must expire, and within this many seconds of its issue (or of now).
        self._jwt_max_lifetime = jwt_max_lifetime
        self._cache: TtlCache[str, Principal] = TtlCache(cache_seconds)

    def forget_key(self, key_id: str) -> None:
        """Drop cached entries of a revoked key."""
        self._cache.discard_where(lambda _, principal: principal.subject == key_id)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        secret = headers.get("x-api-key", "").strip()
        authorization = headers.get("authorization", "").strip()
        if not secret and authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Unauthenticated("Invalid authorization header", reason="INVALID_AUTH_HEADER")
            secret = value.strip()
        if secret:
            return await self._from_key(secret)
        token = headers.get("auth", "").strip()
        if token:
            return await self._from_jwt(token)
        raise Unauthenticated("Authentication required", reason="MISSING_CREDENTIALS")

    async def _from_key(self, secret: str) -> Principal:
        digest = hash_secret(secret)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        async with self._db.read() as uow:
            key = await CredentialLookup(uow).key_by_hash(digest)
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("Invalid API key", reason="INVALID_API_KEY")
        principal = Principal(
            key.tenant_id,
            key.id,
            scope_names.parse(key.scopes),
            key.type or SECRET_KEY,
            origins_of(key),
        )
        self._cache.put(digest, principal)
        return principal

    def _check_lifetime(self, claims: Mapping[str, object]) -> None:
        """exp - iat (or exp - now without iat) at most the configured maximum."""
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float):  # pragma: no cover - jwt.decode checked it
            raise Unauthenticated("Invalid token: exp must be a number", reason="INVALID_JWT")
        start = iat if isinstance(iat, int | float) else time.time()
        if exp - start > self._jwt_max_lifetime:
            raise Unauthenticated(
                f"Invalid token: lifetime over the maximum of {self._jwt_max_lifetime:g} s",
                reason="JWT_LIFETIME_TOO_LONG",
            )

    async def _from_jwt(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app_id = claims.get("appId")
        except jwt.PyJWTError as exc:
            raise Unauthenticated("Invalid token", reason="INVALID_JWT") from exc
        if not isinstance(app_id, str) or not app_id:
            raise Unauthenticated("Invalid token: missing appId", reason="INVALID_JWT")
        async with self._db.read() as uow:
            client = await CredentialLookup(uow).client(app_id)
        if client is None or client.revoked_at is not None:
            raise Unauthenticated("Invalid token: unknown appId", reason="UNKNOWN_APP_ID")
        try:
            verified = jwt.decode(
                token,
                self._box.decrypt(client.secret_encrypted),
                algorithms=["HS256"],
                options={"require": ["exp"], "verify_exp": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("Token expired", reason="JWT_EXPIRED") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(
                "Invalid token: exp (expiry) is required", reason="JWT_EXP_REQUIRED"
            ) from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("Invalid token signature", reason="INVALID_JWT") from exc
        self._check_lifetime(verified)
        return Principal(client.tenant_id, client.id, scope_names.parse(client.scopes))
