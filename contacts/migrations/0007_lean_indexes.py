"""Drop the indexes no read needs; the event's entries get a named index (``timeline_event_idx``).

Dropped (``pg_stat_user_indexes`` after a bench run showed them unused or covered):
- the foreign-key indexes of ``workspace`` on contacts, events and timeline, with the ``_like``
  pattern indexes PostgreSQL adds for text keys (a workspace id is never searched by prefix);
  every read by workspace uses a composite index that leads with it;
- the foreign-key indexes of ``contact`` on events and timeline, covered by
  ``event_contact_occurred_idx`` and ``timeline_contact_created_idx``, which lead with it;
- the timeline's foreign-key index of ``custom_event``, replaced by the same index under the
  name of what it serves (``timeline_event_idx``), built before the old one goes;
- ``timeline_contact_kind_idx`` loses its (created_at, id) columns: its keys then repeat and
  PostgreSQL's btree deduplication stores each (contact, kind) once with its rows (79 -> 16 MB
  on 1M events); a page of one kind sorts the contact's rows of that kind.

On PostgreSQL the index is built and the old ones dropped CONCURRENTLY (no lock that stops
writes; the migration is not atomic, and each step can be re-run: IF [NOT] EXISTS). Which
indexes to drop is read from the catalogue (single-column, not unique, on that column), so the
names Django generated need not be known. Backwards the foreign-key indexes come back.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from events_platform.indexes import drop_own_indexes, restore_field_index
from events_platform.indexes import unindexed_fk as _fk

# (model, field, column) whose own index goes.
UNINDEXED = [
    ("contact", "workspace", "workspace_id"),
    ("customevent", "workspace", "workspace_id"),
    ("customevent", "contact", "contact_id"),
    ("timelineentry", "workspace", "workspace_id"),
    ("timelineentry", "contact", "contact_id"),
    ("timelineentry", "custom_event", "custom_event_id"),
]
EVENT_ENTRIES_INDEX = models.Index(fields=["custom_event"], name="timeline_event_idx")
# The kind index without (created_at, id): its keys repeat, so btree deduplication keeps it small.
OLD_KIND_INDEX = models.Index(fields=["contact", "kind", "-created_at", "-id"], name="timeline_contact_kind_idx")
KIND_INDEX = models.Index(fields=["contact", "kind"], name="timeline_contact_kind_idx")


def forward(apps: Any, schema_editor: Any) -> None:
    postgresql = schema_editor.connection.vendor == "postgresql"
    entries = apps.get_model("contacts", "TimelineEntry")
    if postgresql:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {EVENT_ENTRIES_INDEX.name} "
            f"ON {entries._meta.db_table} (custom_event_id)"
        )
        # Dropped first (same name); meanwhile reads by kind use timeline_contact_created_idx.
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {KIND_INDEX.name}")
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {KIND_INDEX.name} ON {entries._meta.db_table} (contact_id, kind)"
        )
    else:
        schema_editor.add_index(entries, EVENT_ENTRIES_INDEX)
        schema_editor.remove_index(entries, OLD_KIND_INDEX)
        schema_editor.add_index(entries, KIND_INDEX)
    for model_name, _, column in UNINDEXED:
        table = apps.get_model("contacts", model_name)._meta.db_table
        drop_own_indexes(schema_editor, table, column, keep=[EVENT_ENTRIES_INDEX.name])


def backward(apps: Any, schema_editor: Any) -> None:
    entries = apps.get_model("contacts", "TimelineEntry")
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(KIND_INDEX.name)}")
    schema_editor.add_index(entries, OLD_KIND_INDEX)
    drop = f"DROP INDEX IF EXISTS {schema_editor.quote_name(EVENT_ENTRIES_INDEX.name)}"
    schema_editor.execute(drop)
    for model_name, field_name, _ in UNINDEXED:
        restore_field_index(schema_editor, apps.get_model("contacts", model_name), field_name)
    schema_editor.execute(drop)  # SQLite rebuilds a table to alter it, with the indexes of this state


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("contacts", "0006_lean_event_insert_entries"),
        ("workspaces", "0002_api_key_rate_window"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField("contact", "workspace", _fk("workspaces.workspace", "contacts")),
                migrations.AlterField("customevent", "contact", _fk("contacts.contact", "custom_events")),
                migrations.AlterField("customevent", "workspace", _fk("workspaces.workspace", "custom_events")),
                migrations.AlterField("timelineentry", "contact", _fk("contacts.contact", "timeline")),
                migrations.AlterField(
                    "timelineentry",
                    "custom_event",
                    _fk("contacts.customevent", "timeline_entries", blank=True, null=True),
                ),
                migrations.AlterField("timelineentry", "workspace", _fk("workspaces.workspace", "+")),
                migrations.AddIndex("timelineentry", EVENT_ENTRIES_INDEX),
                migrations.RemoveIndex("timelineentry", OLD_KIND_INDEX.name),
                migrations.AddIndex("timelineentry", KIND_INDEX),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
