"""Stored contact totals (ContactTotals): what they hold after each kind of write, how the
contacts list sorts and pages by them, and that they equal the live computation."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from contacts import refresh, selectors
from contacts.models import Contact, ContactTotals, CustomEvent
from contacts.refresh import contact_totals_rebuild, contact_totals_refresh
from contacts.services import (
    EventInput,
    contact_delete,
    contact_upsert,
    event_set_deleted,
    events_upsert,
)
from contacts.tests.conftest import AfterCommit
from contacts.tests.factories import EventInputFactory, WorkspaceFactory, events_create
from events_platform.workspaces.models import Workspace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def purchase(email: str, value: str, *, hours: float = 0, external_id: str | None = None) -> EventInput:
    extra = {"external_id": external_id} if external_id else {}
    return EventInputFactory.build(
        email=email,
        occurred_at=T0 + timedelta(hours=hours),
        goal={"goal_type": "purchase", "goal_value": Decimal(value)},
        **extra,
    )


def visit(email: str, *, hours: float = 0) -> EventInput:
    return EventInputFactory.build(
        email=email, event_name="page.viewed", occurred_at=T0 + timedelta(hours=hours), goal={}
    )


def totals_of(email: str) -> tuple[Decimal, int, datetime | None]:
    row = ContactTotals.objects.get(contact__email=email)
    return row.lifetime_value, row.order_count, row.last_event_at


# ---------------------------------------------------------------------------------------
# Kept fresh by the queue drain after each write
# ---------------------------------------------------------------------------------------


def test_totals_follow_inserted_purchases_refunds_and_visits(workspace: Workspace, after_commit: AfterCommit) -> None:
    """After the drain, lifetime value is net of refunds, orders count positive purchases, last event is any kind."""
    # when
    with after_commit():
        events_create(
            workspace,
            [
                purchase("ann@x.io", "100.00", hours=1),
                purchase("ann@x.io", "50.50", hours=2),
                purchase("ann@x.io", "-30.00", hours=3),
                visit("ann@x.io", hours=5),
            ],
        )
    # then
    assert totals_of("ann@x.io") == (Decimal("120.50"), 2, T0 + timedelta(hours=5))


def test_totals_follow_soft_delete_and_restore(workspace: Workspace, after_commit: AfterCommit) -> None:
    """A soft-deleted event leaves the totals and the last event; restoring it brings both back."""
    # given
    with after_commit():
        events_create(
            workspace, [purchase("ann@x.io", "10", hours=1), purchase("ann@x.io", "90", hours=4, external_id="big")]
        )
    big = CustomEvent.objects.get(external_id="big")
    # when
    with after_commit():
        event_set_deleted(event=big, deleted=True)
    deleted = totals_of("ann@x.io")
    with after_commit():
        event_set_deleted(event=CustomEvent.objects.get(pk=big.pk), deleted=False)
    restored = totals_of("ann@x.io")
    # then
    assert deleted == (Decimal("10.00"), 1, T0 + timedelta(hours=1))
    assert restored == (Decimal("100.00"), 2, T0 + timedelta(hours=4))


def test_totals_follow_an_updated_goal_value(workspace: Workspace, after_commit: AfterCommit) -> None:
    """A newer version of an order with another value (here a full refund to zero) replaces the old figures."""
    # given
    with after_commit():
        events_create(workspace, [purchase("ann@x.io", "40", hours=1, external_id="o1")])
    # when
    with after_commit():
        events_create(workspace, [purchase("ann@x.io", "0", hours=2, external_id="o1")])
    # then
    assert totals_of("ann@x.io") == (Decimal("0.00"), 0, T0 + timedelta(hours=2))


def test_contact_created_by_contacts_upsert_gets_an_empty_row(
    workspace: Workspace, api_client: APIClient, after_commit: AfterCommit
) -> None:
    """A contact that only ever came through contacts.upsert is queued too: it gets 0, 0 and no last event."""
    # when
    with after_commit():
        response = api_client.post(
            "/api/contacts.upsert", {"workspace_id": workspace.id, "email": "quiet@x.io"}, format="json"
        )
    # then
    assert response.status_code == 200
    assert totals_of("quiet@x.io") == (Decimal("0.00"), 0, None)


def test_erased_contact_takes_its_row_along(workspace: Workspace, after_commit: AfterCommit) -> None:
    """Erasing a contact deletes its totals row (cascade); the drain that follows writes none back."""
    # given
    with after_commit():
        events_create(workspace, [purchase("gone@x.io", "10"), purchase("kept@x.io", "20")])
    # when
    with after_commit():
        contact_delete(workspace_id=workspace.id, email="gone@x.io")
    # then
    assert list(ContactTotals.objects.values_list("contact__email", flat=True)) == ["kept@x.io"]


def test_refresh_writes_only_the_given_contacts_of_the_workspace(workspace: Workspace) -> None:
    """contact_totals_refresh is scoped: other contacts, other workspaces and unknown ids are left alone."""
    # given: events stored without their drain
    other = WorkspaceFactory.create(id="globex")
    events_create(workspace, [purchase("a@x.io", "10"), purchase("b@x.io", "20")])
    events_create(other, [purchase("a@x.io", "30")])
    a = Contact.objects.get(workspace=workspace, email="a@x.io")
    foreign = Contact.objects.get(workspace=other)
    # when
    written = contact_totals_refresh(workspace_id=workspace.id, contact_ids=[a.pk, foreign.pk, 10**9])
    # then
    assert written == 1
    assert list(ContactTotals.objects.values_list("contact_id", flat=True)) == [a.pk]


def test_refresh_replaces_stale_figures(workspace: Workspace) -> None:
    """Refreshing recomputes from the events, whatever the row held before."""
    # given
    events_create(workspace, [purchase("a@x.io", "10", hours=1)])
    contact = Contact.objects.get(email="a@x.io")
    ContactTotals.objects.create(
        contact=contact, workspace=workspace, lifetime_value=Decimal("999"), order_count=9, last_event_at=None
    )
    # when
    contact_totals_refresh(workspace_id=workspace.id, contact_ids=[contact.pk])
    # then
    assert totals_of("a@x.io") == (Decimal("10.00"), 1, T0 + timedelta(hours=1))


# ---------------------------------------------------------------------------------------
# Equal to the live computation
# ---------------------------------------------------------------------------------------


def random_events(rng: random.Random, contacts: int, events: int) -> list[EventInput]:
    inputs = []
    for _ in range(events):
        email = f"c{rng.randrange(contacts)}@x.io"
        roll = rng.random()
        hours = rng.randrange(0, 5000) / 4
        if roll < 0.45:
            inputs.append(purchase(email, f"{rng.randrange(1, 50000) / 100:.2f}", hours=hours))
        elif roll < 0.55:
            inputs.append(purchase(email, f"-{rng.randrange(1, 20000) / 100:.2f}", hours=hours))
        elif roll < 0.6:
            inputs.append(
                EventInputFactory.build(
                    email=email,
                    event_name="lead.created",
                    occurred_at=T0 + timedelta(hours=hours),
                    goal={"goal_type": "lead", "goal_value": Decimal("5.00")},
                )
            )
        else:
            inputs.append(visit(email, hours=hours))
        if rng.random() < 0.1:
            inputs[-1] = EventInput(**{**inputs[-1].__dict__, "deleted_at": T0})
    return inputs


def python_totals(workspace: Workspace) -> dict[int, tuple[Decimal, int, datetime | None]]:
    """The definition, computed in Python from the stored events."""
    result: dict[int, tuple[Decimal, int, datetime | None]] = {
        pk: (Decimal("0.00"), 0, None)
        for pk in Contact.objects.filter(workspace=workspace).values_list("pk", flat=True)
    }
    for event in CustomEvent.objects.filter(workspace=workspace, deleted_at__isnull=True):
        value, orders, last = result[event.contact_id]
        if event.goal_type == "purchase":
            assert event.goal_value is not None  # a purchase always has a value
            value += event.goal_value
            orders += event.goal_value > 0
        result[event.contact_id] = (value, orders, max(last, event.occurred_at) if last else event.occurred_at)
    return result


def test_stored_totals_equal_the_live_computation_on_a_random_dataset(
    workspace: Workspace, after_commit: AfterCommit
) -> None:
    """On a seeded random mix of orders, refunds, leads, visits and deleted events, drained batch by batch,
    the table equals both with_contact_totals and a Python computation, and so does a full rebuild."""
    # given
    rng = random.Random(20261130)
    with after_commit():
        events_create(workspace, random_events(rng, contacts=40, events=400))
        contact_upsert(workspace_id=workspace.id, email="never@x.io", fields={})
    stored = {t.contact_id: (t.lifetime_value, t.order_count, t.last_event_at) for t in ContactTotals.objects.all()}
    # when
    live = {
        c.pk: (c.lifetime_value, c.order_count, c.last_event_at)
        for c in selectors.with_contact_totals(Contact.objects.filter(workspace=workspace))
    }
    ContactTotals.objects.all().delete()
    rebuilt_rows = contact_totals_rebuild()
    rebuilt = {t.contact_id: (t.lifetime_value, t.order_count, t.last_event_at) for t in ContactTotals.objects.all()}
    # then
    expected = python_totals(workspace)
    assert len(expected) > 30 and any(v[1] == 0 and v[2] is not None for v in expected.values())
    assert any(v[0] < 0 for v in expected.values()) and any(v[2] is None for v in expected.values())
    assert stored == expected
    assert live == expected
    assert rebuilt == expected and rebuilt_rows == len(expected)


# ---------------------------------------------------------------------------------------
# Sorting and keyset pages over the stored totals
# ---------------------------------------------------------------------------------------


def reference_order(workspace: Workspace, key: str, descending: bool) -> list[int]:
    """Contacts in (key, id) order with NULL as the smallest key, computed in Python from the table."""
    rows = list(ContactTotals.objects.filter(workspace=workspace).values_list("contact_id", key))
    floor = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(rows, key=lambda r: (r[1] is not None, r[1] if r[1] is not None else floor, r[0]))
    return [pk for pk, _ in (reversed(ordered) if descending else ordered)]


@pytest.mark.parametrize("sort", ["-ltv", "ltv", "-orders", "orders", "-last_event", "last_event"])
def test_keyset_pages_by_each_total_match_the_reference_order_both_ways(
    workspace: Workspace, after_commit: AfterCommit, sort: str
) -> None:
    """Pages of 4 walked forward then back cover every contact once, in (key, id) order, through long runs of
    equal keys and across the NULL run of contacts without events (last when descending, first ascending)."""
    # given: 3 distinct values spread over 18 buyers (ties), 5 contacts without events
    with after_commit():
        events_create(
            workspace,
            [purchase(f"b{n}@x.io", str(10 * (n % 3) + 10), hours=n % 4) for n in range(18)],
        )
        for n in range(5):
            contact_upsert(workspace_id=workspace.id, email=f"quiet{n}@x.io", fields={})
    key, descending = selectors.CONTACT_SORTS[sort]
    expected = reference_order(workspace, key, descending)
    # when
    pages, after = [], None
    while True:
        page = selectors.contact_page(workspace_id=workspace.id, sort=sort, limit=4, after=after)
        pages.append([c.pk for c in page.items])
        if not page.next_cursor:
            break
        after = page.next_cursor
    back: list[list[int]] = []
    before = page.prev_cursor
    while before:
        page = selectors.contact_page(workspace_id=workspace.id, sort=sort, limit=4, before=before)
        back.insert(0, [c.pk for c in page.items])
        before = page.prev_cursor
    # then
    assert len(expected) == 23
    assert [pk for p in pages for pk in p] == expected
    assert back == pages[:-1]


def test_list_shows_stored_figures_and_a_contact_without_row_yet(
    workspace: Workspace, after_commit: AfterCommit
) -> None:
    """The default sort lists a contact whose drain has not run yet (with 0, 0, never); the sorts by a total
    list it once its row exists. The figures shown are the stored ones, not recomputed."""
    # given
    with after_commit():
        events_create(workspace, [purchase("old@x.io", "10")])
    events_create(workspace, [purchase("new@x.io", "99")])  # committed, drain not yet run
    # when
    by_created = selectors.contact_page(workspace_id=workspace.id)
    by_ltv = selectors.contact_page(workspace_id=workspace.id, sort="-ltv")
    # then
    assert [(c.email, c.lifetime_value, c.order_count, c.last_event_at) for c in by_created.items] == [
        ("new@x.io", Decimal("0.00"), 0, None),
        ("old@x.io", Decimal("10.00"), 1, T0),
    ]
    assert [c.email for c in by_ltv.items] == ["old@x.io"]


# ---------------------------------------------------------------------------------------
# The rebuild command
# ---------------------------------------------------------------------------------------


def test_rebuild_command_recomputes_every_workspace_and_reports_each(workspace: Workspace) -> None:
    """contact_totals_rebuild writes a row per contact, workspace by workspace, and says how many."""
    # given: events stored without their drain, one row stale
    other = WorkspaceFactory.create(id="globex")
    events_create(workspace, [purchase("a@x.io", "10"), purchase("b@x.io", "5")])
    events_create(other, [purchase("c@x.io", "7")])
    ContactTotals.objects.create(contact=Contact.objects.get(email="a@x.io"), workspace=workspace, order_count=5)
    out = StringIO()
    # when
    call_command("contact_totals_rebuild", stdout=out)
    # then
    assert "acme: 2 contacts" in out.getvalue() and "globex: 1 contacts" in out.getvalue()
    assert totals_of("a@x.io") == (Decimal("10.00"), 1, T0)
    assert ContactTotals.objects.count() == 3


def test_rebuild_command_takes_one_workspace(workspace: Workspace) -> None:
    """--workspace limits the rebuild to that workspace; an unknown one is an error."""
    # given
    other = WorkspaceFactory.create(id="globex")
    events_create(workspace, [purchase("a@x.io", "10")])
    events_create(other, [purchase("c@x.io", "7")])
    # when
    call_command("contact_totals_rebuild", "--workspace", "globex", stdout=StringIO())
    # then
    assert list(ContactTotals.objects.values_list("workspace_id", flat=True)) == ["globex"]
    with pytest.raises(CommandError):
        call_command("contact_totals_rebuild", "--workspace", "nope", stdout=StringIO())


def test_drain_refreshes_totals_in_its_transaction(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain refreshes the claimed contacts' totals; if the segment pass (its hook) fails, the claim
    and the totals roll back together and the next drain does both."""
    from segments import services as segment_services  # test-only: the app never imports upward

    # given
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "10")])
    contact = Contact.objects.get(email="a@x.io")
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[contact.pk])

    def boom(**kwargs: Any) -> int:
        raise RuntimeError("segments down")

    monkeypatch.setattr(segment_services, "segments_refresh_contacts", boom)
    # when
    with pytest.raises(RuntimeError):
        refresh.contacts_refresh_pending(workspace_id=workspace.id)
    failed = ContactTotals.objects.filter(contact=contact).exists()
    monkeypatch.undo()
    claimed, more = refresh.contacts_refresh_pending(workspace_id=workspace.id)
    # then
    assert not failed
    assert (claimed, more) == (1, False)
    assert totals_of("a@x.io") == (Decimal("10.00"), 1, T0)


def test_a_cursor_of_another_sort_restarts_at_the_first_page(
    member_client: Any, workspace: Workspace, after_commit: AfterCommit
) -> None:
    """A lifetime-value cursor sent with the last-event sort (a hand-edited link) is refused, not a server error."""
    # given
    with after_commit():
        events_create(workspace, [purchase(f"p{n}@x.io", str(n + 1), hours=n) for n in range(3)])
    cursor = selectors.contact_page(workspace_id=workspace.id, sort="-ltv", limit=1).next_cursor
    # when
    response = member_client.get("/contacts/", {"sort": "-last_event", "after": cursor})
    # then
    assert response.status_code == 200
    assert [c.email for c in response.context["page"].items] == ["p2@x.io", "p1@x.io", "p0@x.io"]
    with pytest.raises(selectors.InvalidCursor):
        selectors.contact_page(workspace_id=workspace.id, sort="orders", after=cursor)
