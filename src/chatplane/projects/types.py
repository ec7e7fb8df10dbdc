"""Project domain types."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from chatplane.storage.models import Project as ProjectRow


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    description: str
    default_model: str
    tier_models: dict[str, str]  # tier -> model id
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ProjectRow) -> Project:
        return cls(
            row.id,
            row.name,
            row.description,
            row.default_model,
            tier_models(row),
            row.created_at,
            row.updated_at,
        )


@dataclass(frozen=True, slots=True)
class ProjectPage:
    projects: Sequence[Project]
    total: int
    limit: int
    offset: int


def tier_models(row: ProjectRow) -> dict[str, str]:
    loaded = json.loads(row.tier_models or "{}")
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
