"""Session tags: one reading of the stored forms for the writer (a turn's metadata tags)
and the reader (the analytics routes)."""

from __future__ import annotations

import json

from chatplane.analytics.vendor import session_tags
from chatplane.sessions.record import merged_tags


def test_an_older_name_value_tag_keeps_its_meaning_when_a_turn_adds_tags() -> None:
    before = '["vip=gold", "beta"]'
    assert session_tags(before)["sessionTags"] == [
        {"name": "vip", "value": "gold"},
        {"name": "beta", "value": ""},
    ]
    after = merged_tags(before, {"sessionTags": {"lang": "en"}})
    assert after is not None
    assert session_tags(after)["sessionTags"] == [
        {"name": "vip", "value": "gold"},
        {"name": "beta", "value": ""},
        {"name": "lang", "value": "en"},
    ]
    assert json.loads(after)["userTags"] == []
