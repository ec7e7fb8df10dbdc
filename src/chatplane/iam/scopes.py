"""API scopes."""

from __future__ import annotations

PROJECT_READ = "project:read"
PROJECT_WRITE = "project:write"
SESSION_READ = "session:read"
SESSION_EXECUTE = "session:execute"
ANALYTICS_READ = "analytics:read"
KEYS_ADMIN = "keys:admin"

ALL_SCOPES: tuple[str, ...] = (
    PROJECT_READ,
    PROJECT_WRITE,
    SESSION_READ,
    SESSION_EXECUTE,
    ANALYTICS_READ,
    KEYS_ADMIN,
)

# A write scope implies its read scope.
IMPLIED: dict[str, tuple[str, ...]] = {PROJECT_WRITE: (PROJECT_READ,)}


def parse(text: str) -> frozenset[str]:
    """Scopes stored space-separated, expanded with what they imply."""
    granted = set(text.split())
    for scope in list(granted):
        granted.update(IMPLIED.get(scope, ()))
    return frozenset(granted)
