"""chatplane.iam.v1.ApiKeyService."""

from __future__ import annotations

from typing import Any

import grpc

from chatplane.api import call
from chatplane.iam import scopes
from chatplane.iam.auth import Authenticator
from chatplane.iam.service import IamService
from chatplane.iam.types import ApiKeyInfo
from chatplane.iam.v1 import api_key_service_pb2 as pb
from chatplane.iam.v1 import api_key_service_pb2_grpc as pb_grpc
from chatplane.kit.clock import iso

_SERVICE = "/chatplane.iam.v1.ApiKeyService/"
SCOPES = {
    _SERVICE + name: scopes.KEYS_ADMIN
    for name in ("CreateApiKey", "ListApiKeys", "GetApiKey", "RevokeApiKey")
}

Context = grpc.aio.ServicerContext[Any, Any]


def to_proto(key: ApiKeyInfo) -> pb.ApiKey:
    return pb.ApiKey(
        id=key.id,
        name=key.name,
        scopes=key.scopes,
        prefix=key.prefix,
        created_at=iso(key.created_at),
        revoked_at=iso(key.revoked_at),
        type=key.type,
        allowed_origins=key.allowed_origins,
    )


class ApiKeyServicer(pb_grpc.ApiKeyServiceServicer):
    def __init__(self, iam: IamService, authenticator: Authenticator) -> None:
        self._iam = iam
        self._auth = authenticator

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context
    ) -> pb.CreateApiKeyResponse:
        principal = call.principal()
        created = await self._iam.create_key(
            principal.tenant_id,
            request.name,
            list(request.scopes),
            granter=principal.scopes,
            key_type=request.type,
            allowed_origins=list(request.allowed_origins),
        )
        return pb.CreateApiKeyResponse(
            success=True, key=to_proto(created.key), secret=created.secret
        )

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Context
    ) -> pb.ListApiKeysResponse:
        keys = await self._iam.list_keys(call.principal().tenant_id)
        return pb.ListApiKeysResponse(success=True, keys=[to_proto(k) for k in keys])

    async def GetApiKey(
        self, request: pb.GetApiKeyRequest, context: Context
    ) -> pb.GetApiKeyResponse:
        key = await self._iam.get_key(call.principal().tenant_id, request.key_id)
        return pb.GetApiKeyResponse(success=True, key=to_proto(key))

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: Context
    ) -> pb.RevokeApiKeyResponse:
        principal = call.principal()
        key = await self._iam.revoke_key(
            principal.tenant_id, request.key_id, granter=principal.scopes
        )
        self._auth.forget_key(key.id)
        return pb.RevokeApiKeyResponse(success=True, key=to_proto(key))
