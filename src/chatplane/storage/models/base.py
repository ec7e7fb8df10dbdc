"""What every table module shares."""

from __future__ import annotations

import sqlalchemy as sa

# Timezone-aware timestamps on PostgreSQL; SQLite stores them as text.
TS = sa.DateTime(timezone=True)
