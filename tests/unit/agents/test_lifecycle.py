"""Deployment lifecycle rules (pure)."""

from __future__ import annotations

import pytest

from chatplane.agents import lifecycle
from chatplane.agents.compile import describe, snapshot_hash
from chatplane.errors import InvalidArgument
from chatplane.lang import Diagnostic, Severity


def test_retire() -> None:
    assert lifecycle.check_retire("active") == "retired"
    assert lifecycle.check_retire("draining") == "retired"
    with pytest.raises(InvalidArgument, match="already retired") as err:
        lifecycle.check_retire("retired")
    assert err.value.reason == "INVALID_TRANSITION"


def test_promote() -> None:
    assert lifecycle.check_promote("active", "dev", "staging") == "active"
    assert lifecycle.check_promote("draining", "dev", "production") == "active"
    with pytest.raises(InvalidArgument, match="restore it first"):
        lifecycle.check_promote("retired", "dev", "staging")
    with pytest.raises(InvalidArgument, match="already there"):
        lifecycle.check_promote("active", "dev", "dev")


def test_rollback() -> None:
    assert lifecycle.check_rollback("active", "cprev", "dev") == ("retired", "active")
    with pytest.raises(InvalidArgument, match="no deployment was active in dev"):
        lifecycle.check_rollback("active", None, "dev")
    for status in ("draining", "retired"):
        with pytest.raises(InvalidArgument, match=f"Cannot roll back a {status}"):
            lifecycle.check_rollback(status, "cprev", "dev")


def test_restore() -> None:
    assert lifecycle.restore_to("retired", environment_has_active=False) == "active"
    assert lifecycle.restore_to("retired", environment_has_active=True) == "draining"
    for status in ("active", "draining"):
        with pytest.raises(InvalidArgument, match="only retired ones"):
            lifecycle.restore_to(status, environment_has_active=False)


def test_settled_only_retires_drained_deployments() -> None:
    assert lifecycle.settled("draining", 0) == "retired"
    assert lifecycle.settled("draining", 3) == "draining"
    assert lifecycle.settled("active", 0) == "active"
    assert lifecycle.settled("retired", 0) == "retired"


def test_environment() -> None:
    for env in ("dev", "staging", "production"):
        assert lifecycle.check_environment(env) == env
    with pytest.raises(InvalidArgument, match="required"):
        lifecycle.check_environment("")
    with pytest.raises(InvalidArgument, match="'prod'"):
        lifecycle.check_environment("prod")


def test_violation_text_and_hash() -> None:
    d = Diagnostic("ABL0301", Severity.ERROR, "THEN names step 'x'", 4, 7)
    assert describe(d) == "line 4, col 7: [ABL0301] THEN names step 'x'"
    a = snapshot_hash({"A": ("abl", "1"), "B": ("yaml", "2")})
    assert a == snapshot_hash({"B": ("yaml", "2"), "A": ("abl", "1")})  # order-free
    assert a != snapshot_hash({"A": ("abl", "1"), "B": ("yaml", "3")})
