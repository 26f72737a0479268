"""Migrations that move data: the refresh queue's table moves from segments to contacts, rows kept."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from contacts.models import PendingContactRefresh

BEFORE_THE_MOVE = [("segments", "0003_pending_refresh_claims"), ("contacts", "0004_backfill_contact_totals")]
AFTER_THE_MOVE = [("segments", "0004_pending_contact_refresh_moves_to_contacts")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_moving_the_refresh_queue_to_contacts_keeps_queued_and_claimed_rows() -> None:
    """Rows queued (and claimed) while the queue lived in segments are in contacts' queue after the
    migration, unchanged; migrating back returns them to segments' table."""
    # given a queue in segments' table, one row queued and one claimed by a running drain
    old_apps = migrate(BEFORE_THE_MOVE).loader.project_state(BEFORE_THE_MOVE).apps
    workspace = old_apps.get_model("workspaces", "Workspace").objects.create(id="acme", name="Acme")
    old_queue = old_apps.get_model("segments", "PendingContactRefresh")
    claimed_at = timezone.now()
    old_queue.objects.create(workspace=workspace, contact_id=7)
    old_queue.objects.create(workspace=workspace, contact_id=9, claim_token="t" * 32, claimed_at=claimed_at)
    try:
        # when
        migrate(AFTER_THE_MOVE)
        moved = list(
            PendingContactRefresh.objects.order_by("contact_id").values_list(
                "workspace_id", "contact_id", "claim_token", "claimed_at"
            )
        )
        tables = connection.introspection.table_names()
        # then
        assert moved == [("acme", 7, "", None), ("acme", 9, "t" * 32, claimed_at)]
        assert "contacts_pendingcontactrefresh" in tables
        assert "segments_pendingcontactrefresh" not in tables
        # when migrated back
        back_apps = migrate(BEFORE_THE_MOVE).loader.project_state(BEFORE_THE_MOVE).apps
        # then
        back = back_apps.get_model("segments", "PendingContactRefresh").objects.order_by("contact_id")
        assert list(back.values_list("contact_id", flat=True)) == [7, 9]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
