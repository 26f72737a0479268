"""Two indexes re-created: one covers the dashboard, both stay dense as events arrive.

- ``event_ws_occurred_idx`` also carries ``deleted_at``, ``goal_type`` and ``goal_value`` (INCLUDE
  columns, not keys): the dashboard's 90-day events and revenue per day
  (``segments.selectors.dashboard_figures``) is then an index-only scan of the window's range
  instead of a sequential scan of every event (at 1M events about 40% of them are in the
  window, too many for an index scan that reads the heap). Its keys become ascending: the
  events page reads it backwards (newest first) as it read the descending one forwards, and
  new events, which are the newest, now land at the right end of their workspace's range,
  where a full page splits 90/10 (PostgreSQL's rightmost split) instead of 50/50: after an
  ingest-built load the descending index's leaves were 67% full.
- ``timeline_event_idx`` skips the entries without an event (contacts', segments'): their NULL
  keys sorted after every event id, so each new id went into the page before them, never the
  rightmost one, and pages split 50/50 (51% full). Its reads (an event's entries, the cascade of
  an erasure) look up event ids, which the partial index holds all of.

On PostgreSQL each new index is built CONCURRENTLY under a temporary name, the old one dropped
CONCURRENTLY and the new one renamed (no lock that stops writes; not atomic, each step can be
re-run). Elsewhere the index is simply re-created (SQLite keeps no INCLUDE columns).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.models import Q

OLD_WS_OCCURRED = models.Index(fields=["workspace", "-occurred_at", "-id"], name="event_ws_occurred_idx")
WS_OCCURRED = models.Index(
    fields=["workspace", "occurred_at", "id"],
    include=["deleted_at", "goal_type", "goal_value"],
    name="event_ws_occurred_idx",
)
OLD_EVENT_ENTRIES = models.Index(fields=["custom_event"], name="timeline_event_idx")
EVENT_ENTRIES = models.Index(
    fields=["custom_event"], condition=Q(custom_event__isnull=False), name="timeline_event_idx"
)
# (model, index before, index after)
SWAPS = [
    ("CustomEvent", OLD_WS_OCCURRED, WS_OCCURRED),
    ("TimelineEntry", OLD_EVENT_ENTRIES, EVENT_ENTRIES),
]
BUILDING = "contacts_index_building"


def _swap(apps: Any, schema_editor: Any, model_name: str, old: models.Index, new: models.Index) -> None:
    model = apps.get_model("contacts", model_name)
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.remove_index(model, old)
        schema_editor.add_index(model, new)
        return
    # The index's own CREATE statement, under the temporary name and built concurrently.
    create = str(new.create_sql(model, schema_editor, concurrently=True))
    quoted = schema_editor.quote_name(new.name)
    assert quoted in create, create
    create = create.replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)
    schema_editor.execute(create.replace(quoted, BUILDING, 1))
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")
    schema_editor.execute(f"ALTER INDEX IF EXISTS {BUILDING} RENAME TO {quoted}")


def forward(apps: Any, schema_editor: Any) -> None:
    for model_name, old, new in SWAPS:
        _swap(apps, schema_editor, model_name, old, new)


def backward(apps: Any, schema_editor: Any) -> None:
    for model_name, old, new in SWAPS:
        _swap(apps, schema_editor, model_name, new, old)


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("contacts", "0007_lean_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                operation
                for model_name, old, new in SWAPS
                for operation in (
                    migrations.RemoveIndex(model_name.lower(), old.name),
                    migrations.AddIndex(model_name.lower(), new),
                )
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
