"""Every index of contacts, events and timeline serves a read, and that read uses it (PostgreSQL EXPLAIN).

Each read runs for real (the API, a page, a selector); its statement on the table is captured
and explained with sequential scans, sorts and bitmaps priced out (the tables here are small; at
bench size the planner picks the same indexes unaided: ``pg_stat_user_indexes`` in the bench). The plan must name
the index the model says serves that read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Count, Max, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from contacts import activity, refresh, selectors
from contacts.models import Contact, CustomEvent, EventActivity, PendingContactRefresh, StoredTimelineEntry
from contacts.services import EventInput, events_upsert
from events_platform.plans import LIST, LOOKUP, unnamed_indexes
from events_platform.plans import plans as _plans
from events_platform.plans import uses as _uses
from events_platform.workspaces.models import Workspace
from segments.selectors import dashboard_figures


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): the plans of PostgreSQL's planner are under test")


@pytest.fixture
def stored(workspace: Workspace) -> None:
    """Two workspaces, 20 contacts each, 10 events per contact of 4 names, one event updated."""
    now = timezone.now()
    for ws in (workspace.id, "other"):
        Workspace.objects.get_or_create(id=ws, defaults={"name": ws})
        inputs = [
            EventInput(
                email=f"c{c}@example.com",
                event_name=("order.completed", "page.viewed", "lead.created", "cart.updated")[n % 4],
                external_id=f"{c}-{n}",
                occurred_at=now - timedelta(hours=c * 10 + n),
                properties={"n": n},
                goal={"goal_type": "purchase", "goal_value": Decimal("5.00")} if n % 4 == 0 else {},
            )
            for c in range(20)
            for n in range(10)
        ]
        for start in range(0, len(inputs), 50):
            events_upsert(workspace_id=ws, events=inputs[start : start + 50])
    again = EventInput(
        email="c1@example.com", event_name="order.completed", external_id="1-0", occurred_at=now, properties={"n": 99}
    )
    events_upsert(workspace_id=workspace.id, events=[again])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact, contacts_customevent, contacts_timelineentry")


def _get(client: APIClient, path: str, **query: str) -> Callable[[], Any]:
    def run() -> None:
        response = client.get(path, {"workspace_id": "acme", **query})
        assert response.status_code == 200, response.content

    return run


@pytest.mark.parametrize(
    ("path", "query", "table", "index", "off"),
    [
        (
            "/api/customEvents.list",
            {"event_name": "order.completed"},
            "contacts_customevent",
            "event_ws_name_idx",
            LIST,
        ),
        (
            "/api/customEvents.list",
            {"email": "c3@example.com"},
            "contacts_customevent",
            "event_contact_occurred_idx",
            LIST,
        ),
        (
            "/api/customEvents.get",
            {"event_name": "page.viewed", "external_id": "3-1"},
            "contacts_customevent",
            "unique_event_identity_per_workspace",
            LOOKUP,
        ),
        # The timeline view: its stored entries and its events' insert entries, each in order
        ("/api/timeline.list", {"email": "c3@example.com"}, "contacts_timeline", "timeline_contact_created_idx", LIST),
        ("/api/timeline.list", {"email": "c3@example.com"}, "contacts_timeline", "event_contact_occurred_idx", LIST),
        (
            "/api/timeline.list",
            {"email": "c3@example.com", "kind": "custom_event.page.viewed"},
            "contacts_timeline",
            "timeline_contact_kind_idx",
            LOOKUP,  # the contact's rows of one kind, sorted
        ),
        # An insert entry read from its event: the event's later entries (c1's first event was
        # updated), and the moved event's stored insert entry the view skips the event for
        ("/api/timeline.list", {"email": "c1@example.com"}, "contacts_timelineentry", "timeline_event_idx", LOOKUP),
        ("/api/timeline.list", {"email": "c1@example.com"}, "contacts_timeline", "timeline_event_insert_uniq", LIST),
        ("/api/contacts.list", {}, "contacts_contact", "contact_ws_created_idx", LIST),
        (
            "/api/contacts.get",
            {"email": "c3@example.com"},
            "contacts_contact",
            "unique_contact_email_per_workspace",
            LOOKUP,
        ),
    ],
)
def test_api_read_uses_its_index(
    api_client: APIClient,
    stored: None,
    path: str,
    query: dict[str, str],
    table: str,
    index: str,
    off: tuple[str, ...],
) -> None:
    """Each API read of contacts, events and timeline is answered through the index named after it."""
    _uses(index, _plans(_get(api_client, path, **query), table, off))


def test_events_page_uses_the_workspace_newest_first_index(stored: None) -> None:
    """The events page (a workspace's events newest first) reads event_ws_occurred_idx."""
    _uses(
        "event_ws_occurred_idx", _plans(lambda: selectors.event_page(workspace_id="acme").items, "contacts_customevent")
    )


def test_dashboard_activity_reads_the_activity_index_and_only_a_part_bucket_of_events(
    transactional_db: None, stored: None
) -> None:
    """The dashboard's events and revenue (per day, 30 days, all time) are an index-only scan of
    the workspace's range of event_activity_bucket_idx (a few thousand rows once compacted and
    folded); the events it still reads are the part-bucket before the 30-day window's first
    whole bucket, a range of event_ws_occurred_idx."""
    # given: as many events before the window as in it, the deltas compacted, tables vacuumed
    old = timezone.now() - timedelta(days=200)
    events = [
        EventInput(email=f"o{n % 20}@example.com", event_name="order.completed", external_id=f"o{n}", occurred_at=old)
        for n in range(400)
    ]
    for start in range(0, len(events), 50):
        events_upsert(workspace_id="acme", events=events[start : start + 50])
    activity.activity_compact()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_customevent, contacts_eventactivity")
    # when, then
    run = lambda: dashboard_figures(workspace_id="acme")  # noqa: E731
    _uses("Index Only Scan using event_activity_bucket_idx", _plans(run, "contacts_eventactivity", ("seqscan",)))
    _uses("event_ws_occurred_idx", _plans(run, "contacts_customevent", ("seqscan", "bitmapscan")))


def test_the_contact_page_s_kinds_and_summary_are_index_only_scans(transactional_db: None, stored: None) -> None:
    """The contact page's timeline kinds read the contact's events from event_contact_occurred_idx
    alone (it includes the event name) and its purchase summary from event_live_goal_idx alone:
    at 10,000 events a contact's rows sit on thousands of heap pages (19 and 13 ms at the bench's
    default size, against 3 and 6 ms index-only)."""
    # given
    contact = Contact.objects.get(workspace_id="acme", email="c3@example.com")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_customevent, contacts_timelineentry")
    # when
    kinds = _plans(lambda: selectors.timeline_kinds(contact=contact), "contacts_timeline", ("seqscan", "bitmapscan"))
    summary = _plans(
        lambda: selectors.contact_summary(contact=contact), "contacts_customevent", ("seqscan", "bitmapscan")
    )
    # then
    _uses("Index Only Scan using event_contact_occurred_idx", kinds)
    _uses("Index Only Scan using event_live_goal_idx", summary)
    assert selectors.timeline_kinds(contact=contact) == [
        "contact.created",
        "custom_event.cart.updated",
        "custom_event.lead.created",
        "custom_event.order.completed",
        "custom_event.page.viewed",
    ]


def test_contact_totals_read_each_contact_s_events_by_contact_even_on_stale_statistics(stored: None) -> None:
    """The drain's totals statement reads a batch's events through ``event_contact_occurred_idx``
    even when the statistics were taken before the workspace had any (a new, busy workspace before
    autovacuum's next ANALYZE), never by scanning the workspace's events once per contact."""
    Workspace.objects.create(id="fresh", name="Fresh")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact, contacts_customevent")  # "fresh" has nothing yet
    now = timezone.now()
    for start in range(0, 400, 50):
        events_upsert(
            workspace_id="fresh",
            events=[
                EventInput(email=f"f{n % 40}@example.com", event_name="order", external_id=str(n), occurred_at=now)
                for n in range(start, start + 50)
            ],
        )
    ids = list(Contact.objects.filter(workspace_id="fresh").values_list("id", flat=True))
    with CaptureQueriesContext(connection) as captured:
        refresh.contact_totals_refresh(workspace_id="fresh", contact_ids=ids)
    (sql,) = [q["sql"] for q in captured.captured_queries if 'INTO "contacts_contacttotals"' in q["sql"]]
    with transaction.atomic(), connection.cursor() as cursor:
        # 400 events: reading them all is cheap here, so sequential scans are priced out (at size,
        # test_plans_new_workspace shows the same statement probing by id and contact unaided).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "event_contact_occurred_idx" in plan, plan
    assert "event_ws_occurred_idx" not in plan, plan


def test_timeline_page_merges_two_ordered_index_scans_and_stops_after_the_page(stored: None) -> None:
    """A page of the timeline view, unaided: the stored entries and the contact's events each
    read in order from their contact index and merged (no sort of the contact's every event:
    42 ms against 0.2 ms for the bench's heavy contact of 10,000 events)."""
    contact = Contact.objects.get(workspace_id="acme", email="c3@example.com")
    (plan,) = _plans(lambda: selectors.timeline_list(contact=contact, limit=5), "contacts_timeline", ("seqscan",))
    assert "Merge Append" in plan, plan
    assert "timeline_contact_created_idx" in plan and "event_contact_occurred_idx" in plan, plan
    assert "->  Sort" not in plan, plan


def test_contact_page_timeline_kinds_use_the_kind_index(stored: None) -> None:
    """The kinds in a contact's timeline filter come from timeline_contact_kind_idx."""
    contact = Contact.objects.get(workspace_id="acme", email="c3@example.com")
    _uses("timeline_contact_kind_idx", _plans(lambda: selectors.timeline_kinds(contact=contact), "contacts_timeline"))


def test_goal_aggregation_reads_only_the_live_goal_index(stored: None) -> None:
    """The per-contact goal figures segments aggregate are an index-only scan of event_live_goal_idx."""
    rows = (
        CustomEvent.objects.live()
        .goals()
        .filter(workspace_id="acme", goal_type="purchase")
        .values("contact_id")
        .annotate(n=Count("*"), total=Sum("goal_value"), last=Max("occurred_at"))
    )
    plans = _plans(lambda: list(rows), "contacts_customevent")
    _uses("Index Only Scan using event_live_goal_idx", plans)


def test_upsert_of_existing_events_locks_them_through_the_identity_index(workspace: Workspace, stored: None) -> None:
    """An upsert of events that exist finds their rows through unique_event_identity_per_workspace."""
    again = [
        EventInput(email="c2@example.com", event_name="lead.created", external_id="2-2", occurred_at=timezone.now())
    ]
    _uses(
        "unique_event_identity_per_workspace",
        _plans(lambda: events_upsert(workspace_id=workspace.id, events=again), "contacts_customevent", LOOKUP),
    )


def test_no_table_keeps_an_index_the_model_does_not_name(stored: None) -> None:
    """Contacts, events, timeline, activity and the refresh queue have only their primary key and
    the indexes and unique constraints their models name (no foreign-key or _like pattern index
    of their own)."""
    for model in (Contact, CustomEvent, StoredTimelineEntry, EventActivity, PendingContactRefresh):
        assert unnamed_indexes(model) == set(), model.__name__


def test_the_drain_reads_its_claim_by_workspace_through_the_queue_s_unique_index(
    workspace: Workspace, stored: None
) -> None:
    """The refresh queue's reads by workspace (a claim's release) use unique_pending_contact_refresh,
    which leads with the workspace: the queue needs no workspace index of its own."""
    token = "t" * 32
    PendingContactRefresh.objects.filter(workspace_id=workspace.id).update(claim_token=token, claimed_at=timezone.now())
    _uses(
        "unique_pending_contact_refresh",
        _plans(
            lambda: refresh._release_claim(workspace.id, token, done=True),
            "contacts_pendingcontactrefresh",
            LOOKUP,
        ),
    )
