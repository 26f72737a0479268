"""The dashboard's read model (``EventActivity``, ``contacts/activity.py``), filled from the events;
``event_ws_occurred_idx`` loses the INCLUDE columns 0008 gave it for the dashboard.

The backfill is frozen SQL (later changes to ``activity.py`` never change what this did): one row
per 15-minute bucket with live events. On PostgreSQL it is one statement, so writes that commit
meanwhile (the new code, which adds its deltas) are neither lost nor counted twice; events
written meanwhile by code that predates this migration are not counted until
``activity.activity_rebuild()`` runs (``manage.py shell -c "from contacts.activity import
activity_rebuild; activity_rebuild()"``). At 1M events the backfill takes seconds. The index swap
is 0008's (built CONCURRENTLY under a temporary name, then renamed).
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

_0008 = importlib.import_module("contacts.migrations.0008_dashboard_index_and_denser_indexes")

INCLUDING = _0008.WS_OCCURRED
PLAIN = models.Index(fields=["workspace", "occurred_at", "id"], name="event_ws_occurred_idx")

BUCKET = {
    "postgresql": "date_bin('15 minutes', e.occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')",
    # (%%: Django formats the parameters in, none here)
    "sqlite": "datetime(CAST(strftime('%%s', substr(e.occurred_at, 1, 19)) AS INTEGER) - (((CAST(strftime('%%s', "
    "substr(e.occurred_at, 1, 19)) AS INTEGER)) %% 900) + 900) %% 900, 'unixepoch')",
}
FILL = """INSERT INTO contacts_eventactivity (workspace_id, bucket, events, revenue)
SELECT e.workspace_id, {bucket}, COUNT(*),
       ROUND(COALESCE(SUM(CASE WHEN e.goal_type = 'purchase' THEN e.goal_value END), 0), 2)
FROM contacts_customevent e WHERE e.deleted_at IS NULL GROUP BY e.workspace_id, 2"""


def fill(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    sql = FILL.format(bucket=BUCKET.get(vendor, BUCKET["sqlite"]))
    if vendor == "postgresql":
        sql = f"WITH gone AS (DELETE FROM contacts_eventactivity) {sql}"
    else:
        schema_editor.execute("DELETE FROM contacts_eventactivity")
    schema_editor.execute(sql, params=[])


def drop_include(apps: Any, schema_editor: Any) -> None:
    _0008._swap(apps, schema_editor, "CustomEvent", INCLUDING, PLAIN)


def restore_include(apps: Any, schema_editor: Any) -> None:
    _0008._swap(apps, schema_editor, "CustomEvent", PLAIN, INCLUDING)


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("contacts", "0008_dashboard_index_and_denser_indexes"),
        ("workspaces", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventActivity",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("bucket", models.DateTimeField(help_text="Start of the 15 minutes (UTC) the events occurred in.")),
                ("events", models.BigIntegerField(default=0)),
                ("revenue", models.DecimalField(decimal_places=2, default=Decimal("0.00"), max_digits=20)),
                (
                    "workspace",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "event activity",
                "indexes": [
                    models.Index(
                        fields=["workspace", "bucket"], include=["events", "revenue"], name="event_activity_bucket_idx"
                    )
                ],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex("customevent", INCLUDING.name),
                migrations.AddIndex("customevent", PLAIN),
            ],
            database_operations=[migrations.RunPython(drop_include, restore_include)],
        ),
    ]
