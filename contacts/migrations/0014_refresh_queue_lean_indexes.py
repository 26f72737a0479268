"""The refresh queue keeps only the indexes its reads use.

Every ingest write queues its contacts (``contacts_queue_refresh_statement``): each index of
the queue is written once per queued contact. ``workspace``'s own foreign-key index and its
``_like`` pattern index go (``pg_stat_user_indexes`` after a bench run: the ``_like`` one never
scanned); ``unique_pending_contact_refresh`` (workspace_id, contact_id) leads with the
workspace and serves the drain's reads by workspace (``contacts/tests/test_indexes.py``).

Dropped CONCURRENTLY on PostgreSQL (not atomic; re-runnable), found in the catalogue
(``events_platform.indexes``). Backwards the foreign-key index comes back.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from events_platform.indexes import drop_own_indexes, restore_field_index


def forward(apps: Any, schema_editor: Any) -> None:
    table = apps.get_model("contacts", "PendingContactRefresh")._meta.db_table
    drop_own_indexes(schema_editor, table, "workspace_id")


def backward(apps: Any, schema_editor: Any) -> None:
    restore_field_index(schema_editor, apps.get_model("contacts", "PendingContactRefresh"), "workspace")


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("contacts", "0013_event_contact_index_includes_name"),
        # The queue's table has this app's name from then on.
        ("segments", "0004_pending_contact_refresh_moves_to_contacts"),
        ("workspaces", "0002_api_key_rate_window"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="pendingcontactrefresh",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
