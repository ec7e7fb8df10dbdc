"""Size and character-set limits on every identifier and name in every request.

Checked in the interceptor before authentication and before anything is stored or held
in memory (a 7 MB `sessionId` must never reach the usage table or the rate limiter).
The rules follow field names, so a new field is covered by how it is named:

- identifiers (`id`, `*_id`, `default_model`, `agent_name`, `entry_agent_name`): 1-128 of
  `[A-Za-z0-9._:-]` (empty means unset where the field is optional; the service says when
  it is required, and applies narrower rules such as agent names' 1-64 of `[A-Za-z0-9_-]`);
- names (`name`, `label`): at most 200 characters, no control characters (NUL included);
- free text (`description`, `message`, `arguments`, `source`, `content`, `comment`):
  bounded by the request size limit;
- every other string (tier, role, scopes, dates, ...): at most 128 characters, no
  control characters.

`google.protobuf.Struct`/`Value` fields hold user data (message content, tool schemas,
metadata) and are bounded by the request size limit alone. The proto comments state the
same limits.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from chatplane.errors import InvalidArgument

MAX_ID = 128
MAX_NAME = 200
MAX_TOKEN = 128
_ID = re.compile(r"[A-Za-z0-9._:\-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FREE_TEXT = frozenset({"description", "message", "arguments", "source", "content", "comment"})
_NAMES = frozenset({"name", "label"})
# Agent names (1-64 of [A-Za-z0-9_-], the service's rule) are a subset of the id rule.
_ID_FIELDS = frozenset({"id", "default_model", "agent_name", "entry_agent_name"})
_USER_DATA = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)

ID, NAME, TOKEN, NESTED = "id", "name", "token", "nested"
_LIMITS = {ID: MAX_ID, NAME: MAX_NAME, TOKEN: MAX_TOKEN}
# Per message type: (attribute, wire name, kind, repeated, map, singular message).
_Step = tuple[str, str, str, bool, bool, bool]
_plans: dict[str, list[_Step]] = {}


def _kind(field: FieldDescriptor) -> str | None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        target = field.message_type
        return None if target is None or target.full_name in _USER_DATA else NESTED
    if field.type != FieldDescriptor.TYPE_STRING or field.name in _FREE_TEXT:
        return None
    if field.name in _ID_FIELDS or field.name.endswith("_id"):
        return ID
    return NAME if field.name in _NAMES else TOKEN


def _plan(descriptor: Descriptor | Any) -> list[_Step]:
    """The fields of a message type that need checking, computed once per type."""
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        plan = []
        for f in descriptor.fields:
            kind = _kind(f)
            if kind is None:
                continue
            is_map = bool(
                f.is_repeated
                and f.message_type is not None
                and f.message_type.GetOptions().map_entry
            )
            singular_message = not f.is_repeated and f.message_type is not None
            plan.append((f.name, f.json_name, kind, f.is_repeated, is_map, singular_message))
        _plans[descriptor.full_name] = plan
    return plan


def check_request(message: Message, prefix: str = "") -> None:
    """Raise InvalidArgument naming the first field over its limit (wire field names)."""
    for name, json_name, kind, repeated, is_map, singular_message in _plan(message.DESCRIPTOR):
        if singular_message:
            if message.HasField(name):
                check_request(getattr(message, name), f"{prefix}{json_name}.")
            continue
        value = getattr(message, name)
        if not value:  # unset, empty string or empty list/map: nothing to check
            continue
        if not repeated:
            _check_string(prefix + json_name, value, kind)
        elif is_map:
            for key, item in value.items():
                where = f"{prefix}{json_name}.{key}"[:80]
                if kind == NESTED and isinstance(item, Message):
                    check_request(item, where + ".")
                else:  # a map of strings
                    _check_string(where, item, TOKEN if kind == NESTED else kind)
        elif kind == NESTED:
            for i, item in enumerate(value):
                check_request(item, f"{prefix}{json_name}[{i}].")
        else:
            for i, item in enumerate(value):
                if item:
                    _check_string(f"{prefix}{json_name}[{i}]", item, kind)


def _check_string(where: str, value: str, kind: str) -> None:
    if not value:
        return
    limit = _LIMITS[kind]
    if len(value) > limit:
        raise _bad(f"{where} is too long (max {limit})", where)
    if kind == ID:
        if not _ID.fullmatch(value):
            raise _bad(f"{where} may contain only letters, digits and . _ : -", where)
    elif _CONTROL.search(value):
        raise _bad(f"{where} must not contain control characters", where)


def _bad(message: str, field: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid request: {message}", field=field, reason="INVALID_FIELD")
