"""The outbox, deliveries and attempts keep only the indexes their reads use.

Each change a subscription wants writes an outbox row in the ingest's own statement, and each
fan-out writes a delivery per row and subscription: every index of those tables is written that
often. Dropped (covered, or serving no read):
- the outbox's ``workspace`` foreign-key index and its ``_like`` pattern index: the outbox is a
  queue read in id order (its primary key); a workspace's rows are read only when it is deleted;
- the deliveries' ``workspace`` and ``subscription`` foreign-key indexes (with the ``_like`` one
  of the text key): ``webhook_delivery_ws_idx`` and ``webhook_delivery_sub_idx`` lead with them;
- the ``_like`` pattern index of the deliveries' unique ``message_id`` (looked up whole, through
  its unique index, never by prefix);
- the attempts' ``delivery`` foreign-key index: ``webhook_attempt_delivery_idx`` leads with it.
``webhooks/tests/test_indexes.py`` shows each read on the index that serves it.

Dropped CONCURRENTLY on PostgreSQL (not atomic; re-runnable), found in the catalogue
(``events_platform.indexes``). Backwards the foreign-key indexes come back, and the pattern one.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from events_platform.indexes import drop_own_indexes, restore_field_index
from events_platform.indexes import unindexed_fk as _fk

# (model, field, column) whose own indexes go.
UNINDEXED = [
    ("webhookoutbox", "workspace", "workspace_id"),
    ("webhookdelivery", "workspace", "workspace_id"),
    ("webhookdelivery", "subscription", "subscription_id"),
    ("webhookattempt", "delivery", "delivery_id"),
]


def forward(apps: Any, schema_editor: Any) -> None:
    for model_name, _, column in UNINDEXED:
        drop_own_indexes(schema_editor, apps.get_model("webhooks", model_name)._meta.db_table, column)
    # The unique message_id keeps its unique index; only a pattern index stands beside it.
    drop_own_indexes(schema_editor, apps.get_model("webhooks", "WebhookDelivery")._meta.db_table, "message_id")


def backward(apps: Any, schema_editor: Any) -> None:
    for model_name, field_name, _ in UNINDEXED:
        restore_field_index(schema_editor, apps.get_model("webhooks", model_name), field_name)
    create_like = getattr(schema_editor, "_create_like_index_sql", None)  # PostgreSQL's schema editor only
    if create_like is not None:
        deliveries = apps.get_model("webhooks", "WebhookDelivery")
        schema_editor.execute(create_like(deliveries, deliveries._meta.get_field("message_id")))


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("webhooks", "0001_create_webhooks"),
        ("workspaces", "0002_api_key_rate_window"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField("webhookattempt", "delivery", _fk("webhooks.webhookdelivery", "attempt_rows")),
                migrations.AlterField("webhookdelivery", "subscription", _fk("webhooks.webhooksubscription", "deliveries")),
                migrations.AlterField("webhookdelivery", "workspace", _fk("workspaces.workspace", "+")),
                migrations.AlterField("webhookoutbox", "workspace", _fk("workspaces.workspace", "+")),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
