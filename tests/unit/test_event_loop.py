"""CHATPLANE_EVENT_LOOP: uvloop by default when importable, `asyncio` keeps the standard
loop, anything else is refused at start (issue 15)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest

from chatplane.cli import install_event_loop
from chatplane.config import Settings


@pytest.fixture(autouse=True)
def _restore_policy() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


def _running_loop_type() -> str:
    async def probe() -> str:
        return type(asyncio.get_running_loop()).__module__

    return asyncio.run(probe())


def test_the_setting_is_read() -> None:
    assert Settings.from_env({"CHATPLANE_EVENT_LOOP": " UVLoop "}).event_loop == "uvloop"
    assert Settings.from_env({}).event_loop == ""


def test_default_is_uvloop_when_importable() -> None:
    pytest.importorskip("uvloop")
    assert install_event_loop("") == "uvloop"
    assert _running_loop_type().startswith("uvloop")


def test_asyncio_keeps_the_standard_loop() -> None:
    assert install_event_loop("asyncio") == "asyncio"
    assert _running_loop_type().startswith("asyncio")


def test_unknown_value_is_refused() -> None:
    with pytest.raises(RuntimeError, match="CHATPLANE_EVENT_LOOP"):
        install_event_loop("trio")


def test_uvloop_asked_for_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails
    with pytest.raises(RuntimeError, match="not installed"):
        install_event_loop("uvloop")
    assert install_event_loop("") == "asyncio"  # the default falls back quietly
