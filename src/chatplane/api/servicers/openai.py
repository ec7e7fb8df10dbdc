"""chatplane.openai.v1.OpenAiService: OpenAI's Chat Completions over the chat service.

The JSON arrives raw (google.api.HttpBody) and leaves raw: one `chat.completion` object,
or SSE `chat.completion.chunk` frames ending in `data: [DONE]`. Conversions are in
api/openai_wire.py; this module reads the project header and calls the service.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2

from chatplane.api import call
from chatplane.api import openai_request as oreq
from chatplane.api import openai_wire as wire
from chatplane.api.coalesce import coalesce
from chatplane.chat.service import ChatService
from chatplane.errors import ChatplaneError, InvalidArgument, NotFound
from chatplane.iam import scopes
from chatplane.llm.models import DEFAULT_TIER_MODELS, LOCAL_MODEL, TIERS
from chatplane.openai.v1 import openai_service_pb2 as pb
from chatplane.openai.v1 import openai_service_pb2_grpc as pb_grpc

_SERVICE = "/chatplane.openai.v1.OpenAiService/"
CREATE = _SERVICE + "CreateChatCompletion"
SCOPES = {
    CREATE: scopes.SESSION_EXECUTE,
    _SERVICE + "ListModels": scopes.SESSION_EXECUTE,
    _SERVICE + "GetModel": scopes.SESSION_EXECUTE,
}
JSON = "application/json"
SSE = "text/event-stream"
# `created` of the model objects: a fixed moment (models here have no creation date).
MODELS_CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z

Context = grpc.aio.ServicerContext[Any, Any]

# The last message of a stream cut at the end of the shutdown grace period.
SHUTDOWN_MESSAGES: dict[str, Any] = {
    CREATE: lambda: httpbody_pb2.HttpBody(
        content_type=SSE,
        data=wire.error_frame(
            "server shutting down", code="server_shutting_down", type_="server_error"
        ),
    )
}


class OpenAiServicer(pb_grpc.OpenAiServiceServicer):
    def __init__(self, chats: ChatService) -> None:
        self._chats = chats

    async def CreateChatCompletion(
        self, request: httpbody_pb2.HttpBody, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        try:
            project = oreq.project_from_headers(call.request_headers(context))
            chat, options = oreq.parse_request(request.data, project)
            tenant = call.principal().tenant_id
            if not options.stream:
                result = await self._chats.complete(tenant, chat)
                body = wire.completion_body(
                    result, options, id_=wire.completion_id(), created=int(time.time())
                )
                yield httpbody_pb2.HttpBody(content_type=JSON, data=body)
                return
            encoder = wire.ChunkEncoder(options)
            async for frames in coalesce(self._chats.stream(tenant, chat), encoder.frame):
                if frames:
                    yield httpbody_pb2.HttpBody(content_type=SSE, data=frames)
        except ChatplaneError as exc:  # errors before the first frame: a real status
            raise oreq.retarget(exc) from None

    def _models(self) -> list[dict[str, Any]]:
        claude = sorted(
            {*DEFAULT_TIER_MODELS.values(), *self._chats.prices.models()} - {LOCAL_MODEL},
        )
        return [
            wire.model_object(LOCAL_MODEL, "chatplane", MODELS_CREATED),
            *(wire.model_object(tier, "chatplane", MODELS_CREATED) for tier in TIERS),
            *(
                wire.model_object(m, "anthropic", MODELS_CREATED)
                for m in claude
                if m.startswith("claude-")
            ),
        ]

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type=JSON, data=wire.models_body(self._models()))

    async def GetModel(
        self, request: pb.GetModelRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        if not request.model:
            raise InvalidArgument("Invalid request: model is required", field="model")
        for model in self._models():
            if model["id"] == request.model:
                return httpbody_pb2.HttpBody(content_type=JSON, data=wire.dumps(model))
        raise NotFound(
            f"The model {request.model!r} does not exist", reason="MODEL_NOT_FOUND", field="model"
        )
