"""The refresh queue (PendingContactRefresh) belongs to contacts now: its model state moves here.

State only. The table and its queued rows stay as they are until
``segments.0004_pending_contact_refresh_moves_to_contacts`` renames the table to this app's
name and drops the model from segments' state: no row is copied, none is lost.
"""

import django.db.models.deletion
from django.db import migrations, models

QUEUE = migrations.CreateModel(
    name="PendingContactRefresh",
    fields=[
        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
        ("contact_id", models.BigIntegerField()),
        ("queued_at", models.DateTimeField(auto_now_add=True)),
        ("claim_token", models.CharField(blank=True, default="", max_length=32)),
        ("claimed_at", models.DateTimeField(blank=True, null=True)),
        (
            "workspace",
            models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="workspaces.workspace"
            ),
        ),
    ],
    options={
        "constraints": [
            models.UniqueConstraint(fields=("workspace", "contact_id"), name="unique_pending_contact_refresh")
        ]
    },
)


class Migration(migrations.Migration):
    dependencies = [("contacts", "0004_backfill_contact_totals"), ("workspaces", "0001_initial")]
    operations = [migrations.SeparateDatabaseAndState(state_operations=[QUEUE], database_operations=[])]
