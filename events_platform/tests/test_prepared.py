"""Prepared ingest statements (events_platform/prepared.py): on PostgreSQL an upsert's key
lookup, contacts statement and events statement are prepared on the server once per connection
and reused, nothing else is prepared, and DATABASE_PREPARED_STATEMENTS=0 turns it off. A write
through them still reads and stores what it did with client-side binding."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent
from events_platform.prepared import prepared_cursor
from events_platform.testing import _database_url

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's; elsewhere prepared_cursor() is connection.cursor()")


def _upsert(client: APIClient, external_id: str, email: str = "ann@example.com", **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api/customEvents.upsert",
        {
            "workspace_id": "acme",
            "email": email,
            "event_name": "order.completed",
            "external_id": external_id,
            "occurred_at": T0.isoformat(),
            "goal_type": "purchase",
            "goal_value": 12.5,
            "properties": {"sku": "a-1", "note": 'it\'s 100% "quoted" \\ text'},
            **fields,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _prepared() -> dict[str, tuple[int, int]]:
    """This connection's prepared statements: their text -> (generic plans, custom plans)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        return {statement: (generic, custom) for statement, generic, custom in cursor.fetchall()}


def _is_events_statement(sql: str) -> bool:
    """The events' statement: their rows (``src``), then their insert (``ins``) and what follows."""
    return (
        sql.startswith("WITH src AS (SELECT * FROM json_to_recordset(")
        and 'ins AS (INSERT INTO "contacts_customevent"' in sql
    )


def _runs(prepared: dict[str, tuple[int, int]]) -> int:
    return sum(generic + custom for generic, custom in prepared.values())


def test_an_upsert_prepares_its_three_statements_once_and_reuses_them(api_client: APIClient) -> None:
    # given: what earlier tests on this connection prepared
    before = _prepared()
    # when: five upserts of the same shape (each a new contact)
    _upsert(api_client, "o-1")
    after_one = _prepared()
    for n in range(2, 6):
        _upsert(api_client, f"o-{n}", email=f"c{n}@example.com")
    after_five = _prepared()
    # then
    starts = list(after_one)
    assert any('"workspaces_apikey"' in s for s in starts)
    assert any(s.startswith('WITH new AS (INSERT INTO "contacts_contact"') for s in starts)
    assert any(_is_events_statement(s) for s in starts)
    assert len(after_one) <= len(before) + 3
    assert _runs(after_one) == _runs(before) + 3  # nothing else of the request is prepared
    assert list(after_five) == starts  # the same statements, run again
    assert _runs(after_five) == _runs(after_one) + 4 * 3


def test_the_ingest_statements_are_planned_once_per_connection_not_at_every_run(api_client: APIClient) -> None:
    """Generic plans (plan_cache_mode=force_generic_plan in the connection's options): left to
    choose, PostgreSQL re-plans the contacts statement at every run (a custom plan each time)."""
    # when: six upserts of the same shape
    for n in range(6):
        _upsert(api_client, f"g-{n}", email=f"g{n}@example.com")
    # then
    ingest = {
        statement: plans
        for statement, plans in _prepared().items()
        if statement.startswith('WITH new AS (INSERT INTO "contacts_contact"') or _is_events_statement(statement)
    }
    assert len(ingest) == 2
    for generic, custom in ingest.values():
        assert custom == 0 and generic >= 6


def test_what_a_prepared_upsert_stores_is_what_was_sent(api_client: APIClient) -> None:
    # when: twice, so the second runs the prepared statements
    for n in range(2):
        _upsert(api_client, f"o-{n}", goal_value=19.99)
    # then
    event = CustomEvent.objects.get(workspace_id="acme", external_id="o-1")
    assert event.goal_value == Decimal("19.99")
    assert event.occurred_at == T0
    assert event.properties == {"sku": "a-1", "note": 'it\'s 100% "quoted" \\ text'}
    assert Contact.objects.get(pk=event.contact_id).email == "ann@example.com"


def test_the_query_log_shows_a_prepared_statement_with_its_values(api_client: APIClient) -> None:
    # when
    with CaptureQueriesContext(connection) as captured:
        _upsert(api_client, "o-logged")
    # then
    events = [q["sql"] for q in captured.captured_queries if _is_events_statement(q["sql"])]
    assert len(events) == 1
    assert "o-logged" in events[0] and "%s" not in events[0]


def test_turned_off_nothing_is_prepared(api_client: APIClient, settings: Any) -> None:
    # given
    settings.DATABASE_PREPARED_STATEMENTS = False
    before = _prepared()
    # when
    for n in range(7):  # past psycopg's usual threshold of 5
        _upsert(api_client, f"o-{n}")
    # then
    assert _prepared() == before  # no statement added, none run
    assert CustomEvent.objects.filter(workspace_id="acme").count() == 7


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_that_died_is_replaced_before_a_prepared_statement_as_before_any_other() -> None:
    """As ``connection.cursor()`` does at a request's first statement: the health check
    (CONN_HEALTH_CHECKS) finds the session gone and a new one is opened."""
    # given: a kept connection whose session the server ended, at the start of a request
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (old_pid,) = cursor.fetchone()
    with psycopg.connect(_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    connection.health_check_done = False  # type: ignore[attr-defined]  # as close_old_connections leaves it
    # when
    with prepared_cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()
    # then
    assert new_pid != old_pid
