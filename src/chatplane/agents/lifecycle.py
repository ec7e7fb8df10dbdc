"""Deployment lifecycle rules, pure: which transitions are allowed and where they lead.

    create / promote:  new -> active; the environment's previous active -> draining
    settle:            draining -> retired once it has no active sessions
    retire:            active | draining -> retired
    rollback:          active -> retired; its previous deployment -> active
    restore:           retired -> active (no active one in its environment) or draining

The service applies them to rows; invalid transitions raise InvalidArgument with reason
INVALID_TRANSITION and a message that says why.
"""

from __future__ import annotations

from chatplane.agents.types import ACTIVE, DRAINING, ENVIRONMENTS, RETIRED
from chatplane.errors import InvalidArgument

INVALID_TRANSITION = "INVALID_TRANSITION"


def invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message, reason=INVALID_TRANSITION)


def check_environment(environment: str, field: str = "environment") -> str:
    if environment not in ENVIRONMENTS:
        raise InvalidArgument(
            f"{field} must be dev, staging or production (got {environment!r})"
            if environment
            else f"{field} is required: dev, staging or production",
            field=field,
        )
    return environment


def check_retire(status: str) -> str:
    """active | draining -> retired."""
    if status == RETIRED:
        raise invalid("Cannot retire the deployment: it is already retired")
    return RETIRED


def check_promote(status: str, source_environment: str, target_environment: str) -> str:
    """The snapshot of an active or draining deployment becomes another environment's
    active deployment."""
    if status == RETIRED:
        raise invalid("Cannot promote a retired deployment; restore it first")
    if source_environment == target_environment:
        raise invalid(f"Cannot promote the deployment to {target_environment}: it is already there")
    return ACTIVE


def check_rollback(status: str, previous_id: str | None, environment: str) -> tuple[str, str]:
    """(new status of the deployment rolled back, new status of its previous one)."""
    if status != ACTIVE:
        raise invalid(
            f"Cannot roll back a {status} deployment: only the active one of {environment} can"
        )
    if not previous_id:
        raise invalid(
            f"Cannot roll back: no deployment was active in {environment} before this one"
        )
    return RETIRED, ACTIVE


def restore_to(status: str, environment_has_active: bool) -> str:
    """retired -> active when the environment has no active deployment, else draining."""
    if status != RETIRED:
        raise invalid(f"Cannot restore a {status} deployment: only retired ones can be")
    return DRAINING if environment_has_active else ACTIVE


def settled(status: str, active_sessions: int) -> str:
    """A draining deployment with no active sessions is retired; nothing else changes."""
    return RETIRED if status == DRAINING and active_sessions <= 0 else status
