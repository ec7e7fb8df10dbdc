"""Identifier and name limits, by field name, on the generated request types."""

from __future__ import annotations

import pytest

from chatplane.api.limits import check_request
from chatplane.chat.v1 import chat_service_pb2 as chat_pb
from chatplane.errors import InvalidArgument
from chatplane.iam.v1 import api_key_service_pb2 as keys_pb
from chatplane.project.v1 import project_service_pb2 as project_pb


def refused(request: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        check_request(request)  # type: ignore[arg-type]
    return err.value


def test_ids_names_and_tokens() -> None:
    assert refused(chat_pb.CompleteChatRequest(session_id="s" * 129)).field == "sessionId"
    assert refused(project_pb.GetProjectRequest(project_id="a/b")).field == "projectId"
    assert refused(project_pb.CreateProjectRequest(name="n" * 201)).message == (
        "Invalid request: name is too long (max 200)"
    )
    assert refused(keys_pb.CreateApiKeyRequest(name="ok", scopes=["a\nb"])).field == "scopes[0]"
    nested = chat_pb.CompleteChatRequest(
        messages=[chat_pb.ChatMessage(role="user"), chat_pb.ChatMessage(role="x" * 129)]
    )
    assert refused(nested).field == "messages[1].role"
    tiers = project_pb.CreateProjectRequest(name="p", tier_models={"fast": "m" * 129})
    assert refused(tiers).field == "tierModels.fast"


def test_valid_and_free_text_pass() -> None:
    check_request(
        chat_pb.CompleteChatRequest(
            project_id="clx1abc2d0000ab12cd34ef56",
            session_id="a" * 128,
            model_id="claude-sonnet-4-6",
            messages=[chat_pb.ChatMessage(role="user", name="Ada Lovelace")],
        )
    )
    # Descriptions are free text (bounded by the request size and the service's own rule).
    check_request(project_pb.CreateProjectRequest(name="p", description="line\nline"))
    check_request(chat_pb.CompleteChatRequest())  # empty optional ids are "unset"
