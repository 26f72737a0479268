"""Admin for contacts, events and timeline: bounded queries, read-only events, service-backed actions."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conftest import page_queries, queries_with_5_and_30_rows
from contacts.models import Contact, CustomEvent, TimelineEntry
from contacts.tests.factories import EventInputFactory, WorkspaceFactory, events_create
from events_platform.workspaces.models import Workspace

# Generous but fixed: what matters is that it does not grow with the number of rows.
CHANGELIST_MAX_QUERIES = 15
CHANGE_PAGE_MAX_QUERIES = 15


def add_events(count: int, *, email: str | None = None) -> None:
    """Top the tables up to ``count`` events, over several contacts and two workspaces."""
    workspaces = [
        Workspace.objects.filter(pk=ws).first() or WorkspaceFactory.create(id=ws, name=ws) for ws in ("acme", "globex")
    ]
    start = CustomEvent.objects.count()
    now = timezone.now()
    for n in range(start, count):
        events_create(
            # One contact (given email) lives in one workspace; otherwise spread over both.
            workspaces[0] if email else workspaces[n % 2],
            [
                EventInputFactory.build(
                    email=email or f"customer{n % 7}@example.com",
                    external_id=f"order_{n}",
                    occurred_at=now - timedelta(hours=n),
                )
            ],
        )


def test_contact_changelist_search_finds_by_email_and_name(admin_client: Client) -> None:
    """Searching contacts matches part of the email."""
    # given
    add_events(3)
    # when
    response = admin_client.get(reverse("admin:contacts_contact_changelist"), {"q": "customer1@"})
    # then
    assert [c.email for c in response.context["cl"].result_list] == ["customer1@example.com"]


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:contacts_contact_changelist",
        "admin:contacts_customevent_changelist",
        "admin:contacts_timelineentry_changelist",
    ],
)
def test_changelists_query_count_does_not_grow_with_rows(
    admin_client: Client, django_assert_max_num_queries: Callable, url_name: str
) -> None:
    """Contacts, events and timeline changelists cost the same number of queries for 5 rows as for 30."""
    # given / when
    with_5, with_30 = queries_with_5_and_30_rows(
        admin_client, reverse(url_name), add_events, django_assert_max_num_queries, CHANGELIST_MAX_QUERIES
    )
    # then
    assert with_30 == with_5


def test_contact_change_page_shows_recent_rows_with_bounded_queries(
    admin_client: Client, django_assert_max_num_queries: Callable
) -> None:
    """A contact's page lists its 20 most recent events and timeline entries and links to the rest;
    its query count is the same with 5 or 30 events."""
    # given
    add_events(5, email="heavy@example.com")
    contact = Contact.objects.get(email="heavy@example.com")
    url = reverse("admin:contacts_contact_change", args=[contact.pk])
    with_5 = page_queries(admin_client, url)
    add_events(30, email="heavy@example.com")
    # when
    with django_assert_max_num_queries(CHANGE_PAGE_MAX_QUERIES):
        with_30 = page_queries(admin_client, url)
    response = admin_client.get(url)
    # then
    assert with_30 == with_5
    page = response.content.decode()
    newest, oldest = "order_0<", "order_29<"
    assert newest in page and oldest not in page
    assert len(re.findall(r'href="/admin/contacts/customevent/\d+/change/"', page)) == 20
    assert f"?contact__id__exact={contact.pk}" in page


def test_contact_edit_goes_through_service_and_records_timeline(admin_client: Client, workspace: Workspace) -> None:
    """Changing a contact's name in the admin saves it and writes a contact.updated timeline entry;
    the email (its identity) is read-only."""
    # given
    add_events(1, email="ann@example.com")
    contact = Contact.objects.get(email="ann@example.com")
    url = reverse("admin:contacts_contact_change", args=[contact.pk])
    assert "email" not in admin_client.get(url).context["adminform"].form.fields
    # when
    response = admin_client.post(url, {"external_id": "", "first_name": "Ann", "last_name": "Lee", "properties": "{}"})
    # then
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.full_name == "Ann Lee"
    entry = TimelineEntry.objects.get(contact=contact, kind="contact.updated")
    assert entry.changes["first_name"] == {"old": "", "new": "Ann"}


def test_contact_delete_confirmation_counts_rows_and_deletes(admin_client: Client) -> None:
    """Deleting a contact shows counts of its events (not every row) and erases it with its events."""
    # given
    add_events(3, email="gone@example.com")
    contact = Contact.objects.get(email="gone@example.com")
    url = reverse("admin:contacts_contact_delete", args=[contact.pk])
    # when
    confirmation = admin_client.get(url)
    response = admin_client.post(url, {"post": "yes"})
    # then
    assert confirmation.status_code == 200
    assert dict(confirmation.context["model_count"])["custom events"] == 3
    assert response.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert not CustomEvent.objects.filter(contact_id=contact.pk).exists()


def test_soft_delete_then_restore_actions_write_timeline(admin_client: Client) -> None:
    """The "Soft delete" action sets deleted_at, "Restore" clears it; each writes a timeline entry
    (delete, then restore) through event_set_deleted."""
    # given
    add_events(2)
    event, other = CustomEvent.objects.order_by("id")
    changelist = reverse("admin:contacts_customevent_changelist")
    # when
    deleted = admin_client.post(changelist, {"action": "soft_delete", "_selected_action": [event.pk]})
    event.refresh_from_db()
    deleted_at = event.deleted_at
    restored = admin_client.post(changelist, {"action": "restore", "_selected_action": [event.pk]})
    event.refresh_from_db()
    # then
    assert deleted.status_code == restored.status_code == 302
    assert deleted_at is not None
    assert event.deleted_at is None
    operations = list(
        TimelineEntry.objects.filter(custom_event=event)
        .order_by("db_created_at", "id")
        .values_list("operation", flat=True)
    )
    assert operations == ["insert", "delete", "restore"]
    other.refresh_from_db()
    assert other.deleted_at is None


def test_deleted_filter_splits_live_and_deleted_events(admin_client: Client) -> None:
    """The "deleted" filter shows only soft-deleted events for yes and only live ones for no."""
    # given
    add_events(3)
    gone = CustomEvent.objects.order_by("id").first()
    assert gone is not None
    admin_client.post(
        reverse("admin:contacts_customevent_changelist"), {"action": "soft_delete", "_selected_action": [gone.pk]}
    )
    url = reverse("admin:contacts_customevent_changelist")
    # when
    yes = admin_client.get(url, {"deleted": "yes"}).context["cl"].result_list
    no = admin_client.get(url, {"deleted": "no"}).context["cl"].result_list
    # then
    assert [e.pk for e in yes] == [gone.pk]
    assert len(no) == 2 and gone.pk not in {e.pk for e in no}


@pytest.mark.parametrize("model", ["customevent", "timelineentry"])
def test_events_and_timeline_are_read_only(admin_client: Client, model: str) -> None:
    """Events and timeline entries can be viewed but not added, edited or deleted in the admin."""
    # given
    add_events(1)
    model_class: type[Model] = CustomEvent if model == "customevent" else TimelineEntry
    obj = model_class._default_manager.first()
    assert obj is not None
    change_url = reverse(f"admin:contacts_{model}_change", args=[obj.pk])
    # when
    view = admin_client.get(change_url)
    add = admin_client.get(reverse(f"admin:contacts_{model}_add"))
    edit = admin_client.post(change_url, {"event_name": "hacked", "kind": "hacked"})
    delete = admin_client.post(reverse(f"admin:contacts_{model}_delete", args=[obj.pk]), {"post": "yes"})
    # then
    assert view.status_code == 200 and not view.context["has_change_permission"]
    assert add.status_code == edit.status_code == delete.status_code == 403
    assert model_class._default_manager.filter(pk=obj.pk).exists()


def test_contact_add_normalises_email_and_refuses_duplicates(admin_client: Client, workspace: Workspace) -> None:
    """A contact added in the admin gets a trimmed, lower-cased email and a contact.created timeline
    entry; the same email in another case is refused as a duplicate."""
    # given
    url = reverse("admin:contacts_contact_add")
    data = {"workspace": workspace.id, "email": " Ann@Example.COM ", "first_name": "Ann", "properties": "{}"}
    # when
    created = admin_client.post(url, data)
    duplicate = admin_client.post(url, {**data, "email": "ANN@example.com"})
    # then
    assert created.status_code == 302
    contact = Contact.objects.get(workspace=workspace)
    assert (contact.email, contact.first_name) == ("ann@example.com", "Ann")
    assert TimelineEntry.objects.filter(contact=contact, kind="contact.created").count() == 1
    assert duplicate.status_code == 200 and "already exists" in duplicate.content.decode()
    assert Contact.objects.count() == 1
