"""The write services behind the API: atomicity of event and timeline, and the seam to segments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, connection

from contacts.models import Contact, CustomEvent, StoredTimelineEntry, TimelineEntry
from contacts.services import (
    contact_delete,
    contact_upsert,
    event_set_deleted,
    event_upsert,
    events_upsert,
)
from contacts.signals import contacts_changed
from contacts.tests.factories import EventInputFactory
from events_platform.workspaces.models import Workspace

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def reject_timeline_rows(kind: str, operation: str) -> None:
    """Make the database refuse timeline rows of this kind and operation (the outside world failing)."""
    table = StoredTimelineEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # SQLite triggers take no parameters; kind and operation are the tests' own constants.
            cursor.execute(
                f"CREATE TRIGGER reject_timeline BEFORE INSERT ON {table} "
                f"WHEN NEW.kind = '{kind}' AND NEW.operation = '{operation}' "
                "BEGIN SELECT RAISE(ABORT, 'rejected'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION reject_timeline() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.kind = '{kind}' AND NEW.operation = '{operation}' THEN RAISE EXCEPTION 'rejected'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER reject_timeline BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION reject_timeline()"
            )


def test_new_event_is_not_written_when_its_contacts_timeline_entry_fails(workspace: Workspace) -> None:
    """Event, contact and timeline go in one transaction: a failing timeline insert (the new
    contact's; a new event's insert entry is its own row) leaves no event or contact."""
    # given
    reject_timeline_rows("contact.created", "insert")
    incoming = EventInputFactory.build(email="ann@example.com")
    # when
    with pytest.raises(DatabaseError):
        event_upsert(workspace_id=workspace.id, event=incoming)
    # then
    assert not CustomEvent.objects.exists()
    assert not Contact.objects.exists()
    assert not TimelineEntry.objects.exists()


@pytest.mark.parametrize(
    ("operation", "change"),
    [
        ("update", {"occurred_at": T0 + timedelta(hours=1), "properties": {"v": 2}}),
        ("delete", {"deleted_at": T0 + timedelta(hours=1)}),
    ],
)
def test_event_change_is_not_written_when_its_timeline_entry_fails(
    workspace: Workspace, operation: str, change: dict[str, Any]
) -> None:
    """An update or delete whose timeline entry fails leaves the stored event as it was."""
    # given
    original = EventInputFactory.build(email="ann@example.com", external_id="o1", occurred_at=T0, properties={"v": 1})
    event_upsert(workspace_id=workspace.id, event=original)
    reject_timeline_rows("custom_event.order.completed", operation)
    changed = EventInputFactory.build(
        email="ann@example.com", external_id="o1", **({"occurred_at": T0, "properties": {"v": 1}} | change)
    )
    # when
    with pytest.raises(DatabaseError):
        event_upsert(workspace_id=workspace.id, event=changed)
    # then
    stored = CustomEvent.objects.get()
    assert (stored.occurred_at, stored.properties, stored.deleted_at) == (T0, {"v": 1}, None)
    assert sorted(TimelineEntry.objects.values_list("kind", "operation")) == [
        ("contact.created", "insert"),
        ("custom_event.order.completed", "insert"),
    ]
    assert not StoredTimelineEntry.objects.filter(custom_event__isnull=False).exists()


def test_restore_is_not_written_when_its_timeline_entry_fails(workspace: Workspace) -> None:
    """A restore whose timeline entry fails leaves the event deleted."""
    # given
    event_upsert(workspace_id=workspace.id, event=EventInputFactory.build(external_id="o1", occurred_at=T0))
    event_upsert(
        workspace_id=workspace.id, event=EventInputFactory.build(external_id="o1", occurred_at=T0, deleted_at=T0)
    )
    reject_timeline_rows("custom_event.order.completed", "restore")
    # when
    with pytest.raises(DatabaseError):
        event_upsert(workspace_id=workspace.id, event=EventInputFactory.build(external_id="o1", occurred_at=T0))
    # then
    assert CustomEvent.objects.get().deleted_at is not None


def test_batch_is_all_or_nothing_when_one_timeline_entry_fails(workspace: Workspace) -> None:
    """One failing entry (the update of an event inserted by the same batch) rolls back every
    event of the batch."""
    # given
    reject_timeline_rows("custom_event.form_submit", "update")
    batch = [EventInputFactory.build() for _ in range(4)] + [
        EventInputFactory.build(event_name="form_submit", external_id="f1", occurred_at=T0 + timedelta(hours=h))
        for h in (0, 1)
    ]
    # when
    with pytest.raises(DatabaseError):
        events_upsert(workspace_id=workspace.id, events=batch)
    # then
    assert not CustomEvent.objects.exists()
    assert not Contact.objects.exists()


@pytest.fixture
def changed_contacts() -> Iterator[list[tuple[str, list[int]]]]:
    """Records what the segment engine would hear."""
    heard: list[tuple[str, list[int]]] = []

    def receiver(sender: Any, workspace_id: str, contact_ids: list[int], **kwargs: Any) -> None:
        heard.append((workspace_id, contact_ids))

    contacts_changed.connect(receiver, dispatch_uid="test-changed-contacts")
    yield heard
    contacts_changed.disconnect(dispatch_uid="test-changed-contacts")


def test_contacts_changed_is_sent_after_commit_with_the_contacts_of_changed_events(
    workspace: Workspace, changed_contacts: list[tuple[str, list[int]]], django_capture_on_commit_callbacks: Any
) -> None:
    """After the commit, the segment seam hears which contacts' events changed; nothing before it."""
    # given
    batch = [EventInputFactory.build(email="ann@example.com"), EventInputFactory.build(email="bob@example.com")]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        events_upsert(workspace_id=workspace.id, events=batch)
        assert changed_contacts == []
    # then
    ids = sorted(Contact.objects.values_list("pk", flat=True))
    assert changed_contacts == [(workspace.id, ids)]


def test_unchanged_upsert_announces_nothing(
    workspace: Workspace, changed_contacts: list[tuple[str, list[int]]], django_capture_on_commit_callbacks: Any
) -> None:
    """An older version changes nothing, so the segment engine is not bothered."""
    # given
    event_upsert(
        workspace_id=workspace.id,
        event=EventInputFactory.build(email="ann@example.com", external_id="o1", occurred_at=T0),
    )
    older = EventInputFactory.build(email="ann@example.com", external_id="o1", occurred_at=T0 - timedelta(days=1))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        result = event_upsert(workspace_id=workspace.id, event=older)
    # then
    assert result.operation == "unchanged"
    assert changed_contacts == []


def test_events_upsert_returns_results_in_input_order(workspace: Workspace) -> None:
    """Results line up with the inputs, whatever order the keys sort in."""
    # given
    batch = [EventInputFactory.build(external_id=ext) for ext in ("z", "a", "m")]
    # when
    results = events_upsert(workspace_id=workspace.id, events=batch)
    # then
    assert [r.event.external_id for r in results] == ["z", "a", "m"]
    assert all(r.event.pk for r in results)
    assert [r.operation for r in results] == ["created"] * 3


def test_event_set_deleted_soft_deletes_and_restores_through_the_upsert_rule(workspace: Workspace) -> None:
    """The admin's delete and restore write the same timeline entries as the API."""
    # given
    event_upsert(
        workspace_id=workspace.id,
        event=EventInputFactory.build(external_id="o1", goal={"goal_type": "purchase", "goal_value": Decimal("5.00")}),
    )
    event = CustomEvent.objects.select_related("contact").get()
    # when
    deleted = event_set_deleted(event=event, deleted=True)
    restored = event_set_deleted(event=CustomEvent.objects.select_related("contact").get(), deleted=False)
    # then
    assert (deleted.operation, restored.operation) == ("deleted", "restored")
    stored = CustomEvent.objects.get()
    assert stored.deleted_at is None
    assert stored.goal_value == Decimal("5.00")
    operations = list(
        TimelineEntry.objects.filter(custom_event=stored).order_by("id").values_list("operation", flat=True)
    )
    assert operations == ["insert", "delete", "restore"]


def test_contact_upsert_normalises_the_email(workspace: Workspace) -> None:
    """The service itself trims and lower-cases, whoever calls it."""
    # when
    result = contact_upsert(workspace_id=workspace.id, email="  Foo@Example.COM ", fields={"first_name": "Foo"})
    # then
    assert result.contact.email == "foo@example.com"
    assert result.operation == "created"
    assert Contact.objects.get().first_name == "Foo"


def test_contact_delete_reports_whether_it_erased(workspace: Workspace) -> None:
    """True when a contact was erased, False when there was none."""
    # given
    event_upsert(workspace_id=workspace.id, event=EventInputFactory.build(email="ann@example.com"))
    # when
    erased = contact_delete(workspace_id=workspace.id, email="ANN@example.com ")
    again = contact_delete(workspace_id=workspace.id, email="ann@example.com")
    # then
    assert (erased, again) == (True, False)
    assert not TimelineEntry.objects.exists()
    assert not CustomEvent.objects.exists()
