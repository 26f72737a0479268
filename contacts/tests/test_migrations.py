"""Migrations that move data: the refresh queue's table moves from segments to contacts, rows kept."""

from __future__ import annotations

import importlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from contacts.models import PendingContactRefresh
from events_platform.indexes import own_indexes
from events_platform.testing import migrate_to as migrate
from events_platform.testing import migrate_to_latest

BEFORE_THE_MOVE = [("segments", "0003_pending_refresh_claims"), ("contacts", "0004_backfill_contact_totals")]
AFTER_THE_MOVE = [("segments", "0004_pending_contact_refresh_moves_to_contacts")]


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
        migrate_to_latest()


BEFORE_LEAN = [("contacts", "0005_pending_contact_refresh_moves_here")]
LEAN = [("contacts", "0006_lean_event_insert_entries")]


@pytest.mark.django_db(transaction=True)
def test_lean_insert_entries_migration_keeps_what_readers_show() -> None:
    """Insert entries of events never changed become lean; timeline.list's changes are the same
    before and after; entries that could lose something (their event changed since, or changes
    that differ from the row) keep theirs; migrating back restores every lean entry."""
    from contacts.changes import TRACKED_EVENT_FIELDS, diff
    from contacts.selectors import timeline_list

    # given: three events with full insert entries, as the old code wrote them
    old_apps = migrate(BEFORE_LEAN).loader.project_state(BEFORE_LEAN).apps
    workspace = old_apps.get_model("workspaces", "Workspace").objects.create(id="acme", name="Acme")
    contact = old_apps.get_model("contacts", "Contact").objects.create(workspace=workspace, email="a@x.io")
    event_model = old_apps.get_model("contacts", "CustomEvent")
    entry_model = old_apps.get_model("contacts", "TimelineEntry")
    # microseconds with trailing zeros: PostgreSQL's JSON trims them where isoformat() keeps six
    # digits (a reverse migration once gave back ".12" for ".120000", one run in ten)
    now = timezone.now().replace(microsecond=120000)
    fields = TRACKED_EVENT_FIELDS  # what the old code's insert entries held

    def entry_of(event: Any, operation: str, changes: dict[str, Any]) -> None:
        entry_model.objects.create(
            workspace=workspace,
            contact=contact,
            kind="custom_event.order",
            entity_type="custom_event",
            entity_id=str(event.pk),
            custom_event=event,
            operation=operation,
            changes=changes,
            created_at=now,
        )

    def event_with_entry(external_id: str, **values: Any) -> Any:
        moments = {"occurred_at": now, "created_at": now, "updated_at": now}
        event = event_model.objects.create(
            workspace=workspace, contact=contact, event_name="order", external_id=external_id, **moments, **values
        )
        # auto_now(_add) set them apart; the services write one moment for both
        event_model.objects.filter(pk=event.pk).update(created_at=now, updated_at=now)
        event.refresh_from_db()
        entry_of(event, "insert", diff(None, {name: getattr(event, name) for name in fields}))
        return event

    plain = event_with_entry(
        "plain",
        properties={"sku": "A", "n": [1, None]},
        goal_type="purchase",
        goal_value=Decimal("12.50"),
        goal_name="o",
        source="import",
        integration_id="shop",
    )
    changed = event_with_entry("changed", properties={"v": 1})
    event_model.objects.filter(pk=changed.pk).update(properties={"v": 2}, updated_at=now + timedelta(seconds=1))
    entry_of(changed, "update", {"properties": {"old": {"v": 1}, "new": {"v": 2}}})
    odd = event_with_entry("odd", properties={"v": 1})
    entry_model.objects.filter(custom_event=odd).update(changes={"properties": {"new": {"v": "other"}}})
    stored_before = dict(entry_model.objects.filter(operation="insert").values_list("custom_event_id", "changes"))
    try:
        # when
        lean_apps = migrate(LEAN).loader.project_state(LEAN).apps
        lean_entries = lean_apps.get_model("contacts", "TimelineEntry").objects.filter(operation="insert")
        stored = dict(lean_entries.values_list("custom_event_id", "changes"))
        # then
        assert stored == {plain.pk: {}, changed.pk: stored_before[changed.pk], odd.pk: stored_before[odd.pk]}
        # when the insert entries are read from the events (0011, 0012)
        migrate_to_latest()
        from contacts.models import Contact, StoredTimelineEntry

        shown = {
            e.custom_event_id: e.changes
            for e in timeline_list(contact=Contact.objects.get(pk=contact.pk)).items
            if e.operation == "insert"
        }
        kept = set(StoredTimelineEntry.objects.filter(operation="insert").values_list("custom_event_id", flat=True))
        # then readers show the same; only the entries 0006 left their changes are stored
        assert shown == stored_before
        assert kept == {changed.pk, odd.pk}
        # when migrated back
        back_apps = migrate(BEFORE_LEAN).loader.project_state(BEFORE_LEAN).apps
        # then
        back_entries = back_apps.get_model("contacts", "TimelineEntry").objects.filter(operation="insert")
        assert dict(back_entries.values_list("custom_event_id", "changes")) == stored_before
    finally:
        migrate_to_latest()


BEFORE_VIEW = [("contacts", "0010_contact_tally")]


@pytest.mark.django_db(transaction=True)
def test_event_insert_entries_from_events_migration_keeps_every_entry() -> None:
    """0011/0012 on a timeline as 0010 left it: the view holds the same entries (kind,
    operation, time, event) with unique ids; the stored table keeps only what the events cannot
    give (the contact's entry, the insert entry of an event moved since, its update); new
    stored entries (PostgreSQL) take ids no event has; migrating back stores them all again."""
    old_apps = migrate(BEFORE_VIEW).loader.project_state(BEFORE_VIEW).apps
    workspace = old_apps.get_model("workspaces", "Workspace").objects.create(id="acme", name="Acme")
    contact = old_apps.get_model("contacts", "Contact").objects.create(workspace=workspace, email="a@x.io")
    event_model = old_apps.get_model("contacts", "CustomEvent")
    entry_model = old_apps.get_model("contacts", "TimelineEntry")
    t0 = timezone.now().replace(microsecond=0) - timedelta(days=3)

    def entry(event: Any, operation: str, at: Any, changes: dict[str, Any] | None = None) -> None:
        entry_model.objects.create(
            workspace=workspace,
            contact=contact,
            kind=f"custom_event.{event.event_name}" if event else "contact.created",
            entity_type="custom_event" if event else "contact",
            entity_id=str(event.pk if event else contact.pk),
            custom_event=event,
            operation=operation,
            changes=changes or {},
            created_at=at,
        )

    entry(None, "insert", t0, {"email": {"new": "a@x.io"}})
    events = []
    for n in range(3):
        event = event_model.objects.create(
            workspace=workspace,
            contact=contact,
            event_name=f"e{n}",
            external_id=str(n),
            occurred_at=t0 + timedelta(hours=n),
        )
        entry(event, "insert", t0 + timedelta(hours=n))
        events.append(event)
    moved = events[2]
    event_model.objects.filter(pk=moved.pk).update(occurred_at=t0 + timedelta(days=1))
    entry(moved, "update", t0 + timedelta(days=1), {"occurred_at": {"old": "x", "new": "y"}})

    def rows(model: Any) -> list[tuple[Any, ...]]:
        return sorted(model.objects.values_list("kind", "operation", "created_at", "custom_event_id"))

    before = rows(entry_model)
    try:
        # when
        migrate_to_latest()
        from contacts.models import CustomEvent, StoredTimelineEntry, TimelineEntry

        # then
        assert rows(TimelineEntry) == before
        ids = list(TimelineEntry.objects.values_list("id", flat=True))
        assert len(ids) == len(set(ids)) == len(before)
        assert sorted(StoredTimelineEntry.objects.values_list("kind", "operation")) == [
            ("contact.created", "insert"),
            ("custom_event.e2", "insert"),
            ("custom_event.e2", "update"),
        ]
        if connection.vendor == "postgresql":
            new = StoredTimelineEntry.objects.create(
                workspace_id="acme",
                contact_id=contact.pk,
                kind="x",
                operation="insert",
                entity_type="x",
                entity_id="1",
                created_at=t0,
            )
            event_ids = set(CustomEvent.objects.values_list("id", flat=True))
            stored_ids = set(StoredTimelineEntry.objects.values_list("id", flat=True))
            assert not event_ids & stored_ids
            assert new.pk > max(event_ids)
            new.delete()
        # when migrated back
        back_apps = migrate(BEFORE_VIEW).loader.project_state(BEFORE_VIEW).apps
        # then
        assert rows(back_apps.get_model("contacts", "TimelineEntry")) == before
    finally:
        migrate_to_latest()


def _index_definition(name: str) -> tuple[str, bool] | None:
    """(definition, valid) of an index, as migration 0013 reads it."""
    migration = importlib.import_module("contacts.migrations.0013_event_contact_index_includes_name")
    with connection.cursor() as cursor:
        return migration._definition(cursor, name)


@pytest.mark.django_db(transaction=True)
def test_the_contact_index_gains_the_event_name_and_a_stopped_run_is_finished() -> None:
    """0013 rebuilds event_contact_occurred_idx with INCLUDE (event_name) on stored events; run
    again after it stopped between dropping the old index and renaming the new one, it finishes
    (the index exists once, valid, under its name); backwards the column goes again."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: included columns and CONCURRENTLY are PostgreSQL's")
    from contacts.services import EventInput, events_upsert
    from events_platform.workspaces.models import Workspace

    before = [("contacts", "0012_timeline_view")]
    leaf = MigrationExecutor(connection).loader.graph.leaf_nodes()
    Workspace.objects.create(id="acme", name="Acme")
    events_upsert(
        workspace_id="acme",
        events=[
            EventInput(email=f"c{n % 3}@x.io", event_name="a.b", external_id=str(n), occurred_at=timezone.now())
            for n in range(20)
        ],
    )
    try:
        # given the index as 0012 left it
        migrate(before)
        old = _index_definition("event_contact_occurred_idx")
        assert old is not None and "INCLUDE" not in old[0]
        # when a run stopped after building the new index and dropping the old one
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE INDEX event_contact_occurred_new ON contacts_customevent "
                "(contact_id, occurred_at DESC, id DESC) INCLUDE (event_name)"
            )
            cursor.execute("DROP INDEX event_contact_occurred_idx")
        migrate(leaf)
        # then
        new = _index_definition("event_contact_occurred_idx")
        assert new is not None and new[0].endswith("(contact_id, occurred_at DESC, id DESC) INCLUDE (event_name)")
        assert new[1]
        assert _index_definition("event_contact_occurred_new") is None
        # and backwards
        migrate(before)
        back = _index_definition("event_contact_occurred_idx")
        assert back is not None and back[0].endswith("(contact_id, occurred_at DESC, id DESC)")
    finally:
        migrate_to_latest()
    assert "INCLUDE (event_name)" in (_index_definition("event_contact_occurred_idx") or ("",))[0]


@pytest.mark.django_db(transaction=True)
def test_the_refresh_queue_loses_its_workspace_indexes_and_keeps_its_rows() -> None:
    """0014 drops the queue's own workspace indexes (the FK one, its _like): queued rows stay,
    unique_pending_contact_refresh still leads with the workspace; backwards they come back."""
    from events_platform.workspaces.models import Workspace

    table = PendingContactRefresh._meta.db_table
    Workspace.objects.create(id="acme", name="Acme")
    try:
        # given the queue as 0013 left it, with a contact queued
        migrate([("contacts", "0013_event_contact_index_includes_name")])
        assert own_indexes(connection, table, "workspace_id")
        PendingContactRefresh.objects.create(workspace_id="acme", contact_id=7)
        # when
        migrate_to_latest()
        # then
        assert own_indexes(connection, table, "workspace_id") == []
        assert list(PendingContactRefresh.objects.values_list("workspace_id", "contact_id")) == [("acme", 7)]
        # and backwards
        migrate([("contacts", "0013_event_contact_index_includes_name")])
        assert len(own_indexes(connection, table, "workspace_id")) == (2 if connection.vendor == "postgresql" else 1)
    finally:
        migrate_to_latest()
    assert own_indexes(connection, table, "workspace_id") == []
