"""A workspace the statistics do not know yet: ingest and the drain still probe by key (PostgreSQL EXPLAIN).

Statistics are taken by ANALYZE (autovacuum runs it once 10% of a table changed). Taken while a
workspace had no rows, they estimate "workspace_id = 'new'" at one row, and the planner, picking
the cheapest plan for one row, scanned the workspace's whole range of a (workspace, ...) index
and filtered by email, id or external_id: a cost that grows with every contact the new workspace
gets until the next ANALYZE (in the bench: 7 ms more for every single upsert and 7,000 index rows
read by each drain of 8 contacts, at 7,000 contacts).

Here one workspace holds thousands of contacts when ANALYZE runs, then a new one gets 3,000
without one (inside the test's transaction, which autovacuum does not see). Every statement of
an upsert (a new contact; an existing contact's existing event updated), of a drain (totals, a
segment, an RFM model), of a contact's API reads and of its page is explained; none may read a
contacts, events or timeline table by the workspace alone or filter a key after a wider index
range. The prepared ingest statements are also run on their generic plans (planned without the
values), as auto_explain reports them. Whole-workspace reads (builds, lists, the dashboard) keep
the workspace's literal id and its real estimate, and are not under test here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from contacts import refresh
from contacts.models import Contact, CustomEvent
from contacts.services import EventInput, events_upsert
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create, workspace_create, workspace_member_add
from rfm import services as rfm_services
from segments import services as segment_services
from segments.tests.trees import all_of, goal_leaf

NEW = "fresh"
TABLES = ("contacts_contact", "contacts_customevent", "contacts_timelineentry", "contacts_contacttotals")
# An index condition on the workspace and nothing else: the whole workspace's range of the index.
WORKSPACE_ONLY = re.compile(r"^\(\(workspace_id\)::text = ('[^']*'::text|\(?\$\d+\)?(::text)?)\)$")
# A key (a contact's id, an email, an event's identity) checked row by row after the index: the
# scan read a range wider than the key, such as the workspace's purchases.
KEY_FILTERED = re.compile(r"\b(contact_id|id|email|external_id)\)? = ")


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): the plans of PostgreSQL's planner are under test")


def _bulk(workspace_id: str, contacts: int) -> None:
    """``contacts`` contacts with one purchase and a creation entry each, by plain SQL (no
    statistics are taken)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (workspace_id, email, external_id, first_name, last_name, properties, "
            "created_at, updated_at) SELECT %s, 'c' || g || '@' || %s || '.example', '', '', '', '{}', now(), now() "
            "FROM generate_series(1, %s) g",
            [workspace_id, workspace_id, contacts],
        )
        cursor.execute(
            "INSERT INTO contacts_customevent (workspace_id, contact_id, event_name, external_id, properties, "
            "occurred_at, source, goal_type, goal_value, created_at, updated_at) "
            "SELECT workspace_id, id, 'order.completed', 'o-' || email, '{}', now() - interval '2 days', 'api', "
            "'purchase', 25, now(), now() FROM contacts_contact WHERE workspace_id = %s",
            [workspace_id],
        )
        cursor.execute(
            "INSERT INTO contacts_timelineentry (workspace_id, contact_id, kind, operation, entity_type, entity_id, "
            "changes, created_at, db_created_at) SELECT workspace_id, id, 'contact.created', 'insert', 'contact', "
            "id::text, '{}', now(), now() FROM contacts_contact WHERE workspace_id = %s",
            [workspace_id],
        )


def _estimated_rows(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        return int(_as_json(cursor.fetchone()[0])[0]["Plan"]["Plan Rows"])


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def stale(workspace: Workspace) -> None:
    """Statistics taken with 4,000 contacts in ``acme`` and none in ``fresh``, which then gets 3,000,
    a segment and an RFM model."""
    _bulk(workspace.id, 4000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(TABLES)}")
    workspace_create(workspace_id=NEW, name="Fresh")
    segment_services.segment_create(
        workspace_id=NEW, slug="buyers", name="Buyers", tree=all_of(goal_leaf("sum", "gte", 20))
    )
    model = rfm_services.rfm_model_create(workspace_id=NEW, slug="default", name="RFM")
    rfm_services.rfm_model_compute(model_pk=model.pk)  # live, so the drain re-scores its contacts
    _bulk(NEW, 3000)
    # The premise: the planner believes the new workspace (3,000 contacts) is one row.
    assert _estimated_rows("SELECT * FROM contacts_contact WHERE workspace_id = %s", [NEW]) == 1


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _whole_workspace_reads(run: Callable[[], Any]) -> tuple[int, list[str]]:
    """How many statements ``run`` sent that touch the tables, and each scan among them that reads
    a table by the workspace alone, filters a key after the index, or reads it all, with its
    statement."""
    with CaptureQueriesContext(connection) as captured:
        run()
    statements = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UPDATE", "DELETE"))
        and any(table in q["sql"] for table in TABLES)
    ]
    found = []
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            found += _flagged(sql, _as_json(cursor.fetchone()[0])[0]["Plan"])
    return len(statements), found


def _flagged(sql: str, plan: dict[str, Any]) -> list[str]:
    """Each scan of ``plan`` that reads a table by the workspace alone, filters a key after the
    index, or reads it all, with its statement and the plan."""
    found: list[str] = []
    for node in _nodes(plan):
        if node.get("Relation Name") not in TABLES:
            continue
        condition = node.get("Index Cond") or node.get("Recheck Cond") or ""
        wide = WORKSPACE_ONLY.match(condition) or KEY_FILTERED.search(node.get("Filter", ""))
        if node["Node Type"] == "Seq Scan" or wide:
            found.append(
                f"{node['Node Type']} on {node['Relation Name']} ({condition}) in: {sql[:300]}\n"
                + json.dumps(plan, indent=1)[:6000]
            )
    return found


def _generic_plans(run: Callable[[], Any]) -> tuple[int, list[str]]:
    """As ``_whole_workspace_reads``, but from the plans the statements of ``run`` really ran
    with (auto_explain's notice for each), the prepared ones (events_platform/prepared.py) forced
    onto their generic plan: how many prepared statements ran, and each scan flagged."""
    connection.ensure_connection()
    raw = connection.connection
    messages: list[str] = []

    def keep(diagnostic: Any) -> None:
        messages.append(diagnostic.message_primary or "")

    with connection.cursor() as cursor:
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_level = 'notice'",
            "SET auto_explain.log_format = 'json'",
            "SET plan_cache_mode = force_generic_plan",
        ):
            cursor.execute(setting)
    raw.add_notice_handler(keep)
    try:
        run()
    finally:
        raw.remove_notice_handler(keep)
        with connection.cursor() as cursor:
            cursor.execute("RESET auto_explain.log_min_duration")
            cursor.execute("RESET plan_cache_mode")
    prepared, found = 0, list[str]()
    for message in messages:
        if "plan:" not in message:
            continue
        document = json.loads(message.split("plan:", 1)[1])
        text, plan = document["Query Text"], document["Plan"]
        if not any(table in text for table in TABLES):
            continue
        prepared += "$1" in text
        found += _flagged(text, plan)
    return prepared, found


def _event(email: str, external_id: str) -> EventInput:
    return EventInput(
        email=email,
        event_name="order.completed",
        external_id=external_id,
        occurred_at=timezone.now(),
        properties={"n": 1},
        goal={"goal_type": "purchase", "goal_value": Decimal("40.00")},
    )


@pytest.mark.usefixtures("stale")
def test_a_new_contacts_single_upsert_probes_by_email() -> None:
    count, found = _whole_workspace_reads(
        lambda: events_upsert(workspace_id=NEW, events=[_event("someone-new@fresh.example", "n-1")])
    )
    assert count >= 2  # the contacts' statement and the events'
    assert not found, "\n".join(found)


@pytest.mark.usefixtures("stale")
def test_the_prepared_ingest_statements_generic_plans_probe_by_key() -> None:
    """The contacts and events statements are prepared (events_platform/prepared.py) and run on
    generic plans, planned once without the values (settings.py forces them). On those plans a
    new contact's upsert and an import updating stored events still probe by key."""
    emails = [f"c{n}@{NEW}.example" for n in (5, 17, 2999)]
    batch = [_event(email, f"o-{email}") for email in emails] + [_event("generic-new@fresh.example", "g-1")]
    for events in ([_event("generic-single@fresh.example", "g-0")], batch):
        prepared, found = _generic_plans(partial(events_upsert, workspace_id=NEW, events=events))
        assert prepared >= 2  # the contacts' statement and the events', on their generic plans
        assert not found, "\n".join(found)


@pytest.mark.usefixtures("stale")
def test_an_import_updating_existing_events_probes_by_identity() -> None:
    emails = [f"c{n}@{NEW}.example" for n in (5, 17, 2999)]
    batch = [_event(email, f"o-{email}") for email in emails]  # each contact's stored purchase, newer
    batch += [_event(email, f"second-{email}") for email in emails] + [_event("also-new@fresh.example", "n-2")]
    count, found = _whole_workspace_reads(lambda: events_upsert(workspace_id=NEW, events=batch))
    assert not found, "\n".join(found)
    assert count >= 3  # the contacts', the stored events' lock and the events'
    stored = CustomEvent.objects.get(workspace_id=NEW, event_name="order.completed", external_id=f"o-{emails[0]}")
    assert stored.goal_value == Decimal("40.00")  # the update landed


@pytest.mark.usefixtures("stale")
def test_a_drain_of_a_few_contacts_reads_them_by_id() -> None:
    ids = list(Contact.objects.filter(workspace_id=NEW).order_by("id").values_list("id", flat=True)[:8])
    refresh.contacts_queue_refresh(workspace_id=NEW, contact_ids=ids)
    drained: list[tuple[int, bool]] = []
    count, found = _whole_workspace_reads(lambda: drained.append(refresh.contacts_refresh_pending(workspace_id=NEW)))
    assert drained[0][0] == len(ids)
    assert count >= 1
    assert not found, "\n".join(found)


def test_the_check_finds_a_whole_workspace_scan(stale: None) -> None:
    """The test's own detector: the lookup as ingest wrote it before (email = ANY beside the
    workspace) is flagged on these statistics."""
    email = f"c5@{NEW}.example"

    def old_lookup() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM contacts_contact WHERE workspace_id = %s AND email = ANY(%s) ORDER BY id FOR KEY SHARE",
                [NEW, [email]],
            )

    _, found = _whole_workspace_reads(old_lookup)
    assert found and "contacts_contact" in found[0]
    # A generic plan names the workspace by its parameter.
    assert WORKSPACE_ONLY.match("((workspace_id)::text = $2)")


@pytest.mark.usefixtures("stale")
@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/customEvents.list", {"email": f"c5@{NEW}.example"}),
        ("/api/customEvents.get", {"event_name": "order.completed", "external_id": f"o-c5@{NEW}.example"}),
        ("/api/timeline.list", {"email": f"c5@{NEW}.example"}),
        ("/api/contacts.getByEmail", {"email": f"c5@{NEW}.example"}),
    ],
)
def test_a_contacts_reads_probe_by_key(path: str, query: dict[str, str]) -> None:
    client = APIClient()
    secret = api_key_create(workspace=Workspace.objects.get(pk=NEW), name="reads").secret
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    responses = []
    count, found = _whole_workspace_reads(lambda: responses.append(client.get(path, {"workspace_id": NEW, **query})))
    assert responses[0].status_code == 200, responses[0].content
    assert count >= 1
    assert not found, "\n".join(found)


@pytest.mark.usefixtures("stale")
def test_a_contacts_page_reads_it_by_key(client: Any, django_user_model: Any) -> None:
    """The marketer's contact page: the contact, its summary, timeline kinds and first page."""
    user = django_user_model.objects.create_user(username="fresh-marketer")
    workspace_member_add(workspace=Workspace.objects.get(pk=NEW), user=user)
    client.force_login(user)
    contact = Contact.objects.get(workspace_id=NEW, email=f"c5@{NEW}.example")
    responses = []
    count, found = _whole_workspace_reads(
        lambda: responses.append(client.get(reverse("contact-detail", args=[contact.pk])))
    )
    assert responses[0].status_code == 200
    assert contact.email in responses[0].content.decode()
    assert count >= 3
    assert not found, "\n".join(found)
