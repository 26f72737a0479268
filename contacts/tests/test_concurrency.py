"""Concurrent upserts and imports on PostgreSQL: never two rows, never a 5xx, the newest occurred_at wins.

Threads each hold their own database connection and call the real API stack (authentication,
parsing, serializers, services) through DRF's test client, released together by a barrier.
"""

from __future__ import annotations

import random
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from rest_framework.test import APIClient

from conftest import IssuedApiKey
from contacts import activity
from contacts.models import Contact, ContactTally, CustomEvent, EventActivity, TimelineEntry
from contacts.selectors import contact_count

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
THREADS = 24


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            f"needs PostgreSQL (DATABASE_URL=postgres://...): row locks and ON CONFLICT waits are what is under "
            f"test, and {connection.vendor} serialises every writer"
        )


@dataclass
class Outcome:
    statuses: list[int] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_every_call_answered(self, status: int, calls: int) -> None:
        """No call raised, and each of the ``calls`` answered ``status``."""
        assert self.errors == []
        assert self.statuses == [status] * calls, self.bodies


def run_in_parallel(secret: str, calls: list[Callable[[APIClient], Any]]) -> Outcome:
    """Run each call in its own thread and connection, all released at once; collect every answer."""
    outcome = Outcome()
    lock = threading.Lock()
    barrier = threading.Barrier(len(calls))

    def worker(call: Callable[[APIClient], Any]) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        try:
            barrier.wait(timeout=30)
            response = call(client)
            with lock:
                outcome.statuses.append(response.status_code)
                outcome.bodies.append(response.json())
        except Exception as exc:  # the test client re-raises server errors; record them, never lose them
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "site-packages" not in f.filename]
            where = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[-3:]]
            with lock:
                outcome.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]} at {where}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return outcome


def purchase_at(minutes: int, key: str) -> dict[str, Any]:
    """Fields stamped with ``minutes``: occurred at T0 + minutes, properties {key: minutes}, a purchase worth it."""
    return {
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "properties": {key: minutes},
        "goal_type": "purchase",
        "goal_value": minutes,
    }


def assert_activity_matches_events() -> None:
    """The dashboard's activity deltas (contacts/activity.py), written by racing writers, sum per
    bucket to the live events and purchase values stored: no delta lost or counted twice."""
    expected: dict[datetime, list[Any]] = {}
    for event in CustomEvent.objects.filter(deleted_at__isnull=True):
        total = expected.setdefault(activity.bucket_of(event.occurred_at), [0, Decimal(0)])
        total[0] += 1
        total[1] += event.goal_value if event.goal_type == "purchase" else 0
    rows = EventActivity.objects.values("bucket").annotate(n=Sum("events"), money=Sum("revenue"))
    actual = {row["bucket"]: [row["n"], row["money"]] for row in rows if row["n"] or row["money"]}
    assert actual == expected


def assert_contact_tally_matches_contacts() -> None:
    """The contact-count tally's rows (migration 0010's triggers), written by racing writers'
    statements, sum per workspace to the contacts stored."""
    stored = Counter(Contact.objects.values_list("workspace_id", flat=True))
    for workspace_id in {*stored, *ContactTally.objects.values_list("workspace_id", flat=True)}:
        assert contact_count(workspace_id=workspace_id) == stored[workspace_id], workspace_id


def upsert_call(body: dict[str, Any]) -> Callable[[APIClient], Any]:
    return lambda client: client.post("/api/customEvents.upsert", body, format="json")


def import_call(events: list[dict[str, Any]]) -> Callable[[APIClient], Any]:
    return lambda client: client.post(
        "/api/customEvents.import", {"workspace_id": "acme", "events": events}, format="json"
    )


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_upserts_of_one_event_make_one_row_and_the_newest_wins(api_key: IssuedApiKey, round_: int) -> None:
    """24 clients upsert the same new event with distinct occurred_at at once: one row, one contact, no 5xx."""
    # given
    offsets = list(range(THREADS))
    random.Random(round_).shuffle(offsets)
    bodies = [
        {
            "workspace_id": "acme",
            "email": f"Race{round_}@Example.com",
            "event_name": "order.completed",
            "external_id": f"order_{round_}",
            **purchase_at(offset, "offset"),
        }
        for offset in offsets
    ]
    # when
    outcome = run_in_parallel(api_key.secret, [upsert_call(body) for body in bodies])
    # then
    outcome.assert_every_call_answered(200, THREADS)
    event = CustomEvent.objects.get()
    assert Contact.objects.filter(email=f"race{round_}@example.com").count() == 1
    assert Contact.objects.count() == 1
    assert event.occurred_at == T0 + timedelta(minutes=THREADS - 1)
    assert event.properties == {"offset": THREADS - 1}
    operations = [body["operation"] for body in outcome.bodies]
    assert operations.count("created") == 1
    entries = TimelineEntry.objects.filter(custom_event=event)
    assert entries.filter(operation="insert").count() == 1
    assert entries.filter(operation="update").count() == operations.count("updated")
    assert TimelineEntry.objects.filter(kind="contact.created").count() == 1
    assert_activity_matches_events()
    assert_contact_tally_matches_contacts()


@pytest.mark.parametrize("round_", range(6))
def test_concurrent_imports_of_overlapping_batches_with_a_shared_new_email(api_key: IssuedApiKey, round_: int) -> None:
    """16 imports of overlapping 15-event windows over 30 events of one new customer: each event once, newest wins."""
    # given: import i covers events i .. i+14 (mod 30), all stamped T0 + i minutes
    keys = 30
    imports = 16
    batches = []
    sent: dict[int, list[int]] = {k: [] for k in range(keys)}
    for i in range(imports):
        window = [(i + j) % keys for j in range(15)]
        random.Random(round_ * 100 + i).shuffle(window)
        for k in window:
            sent[k].append(i)
        batches.append(
            [
                {
                    "email": "  Shared@Example.com" if k % 2 else "shared@example.com",
                    "event_name": "order.completed" if k % 3 else "subscription/started",
                    "external_id": f"e{k:02d}",
                    **purchase_at(i, "import"),
                }
                for k in window
            ]
        )
    # when
    outcome = run_in_parallel(api_key.secret, [import_call(batch) for batch in batches])
    # then
    outcome.assert_every_call_answered(201, imports)
    assert list(Contact.objects.values_list("email", flat=True)) == ["shared@example.com"]
    assert CustomEvent.objects.count() == keys
    for event in CustomEvent.objects.all():
        newest = max(sent[int(event.external_id[1:])])
        assert event.occurred_at == T0 + timedelta(minutes=newest), event.external_id
        assert event.properties == {"import": newest}
    assert TimelineEntry.objects.filter(operation="insert", entity_type="custom_event").count() == keys
    assert TimelineEntry.objects.filter(kind="contact.created").count() == 1
    created = [r for body in outcome.bodies for r in body["results"] if r["operation"] == "created"]
    assert len(created) == keys
    assert_activity_matches_events()
    assert_contact_tally_matches_contacts()


def test_concurrent_contact_upserts_of_one_new_email_make_one_contact(api_key: IssuedApiKey) -> None:
    """contacts.upsert racing on one new email (spelled differently) creates it once."""
    # given
    spellings = ["new@example.com", " NEW@example.com", "New@Example.Com "]
    bodies = [{"workspace_id": "acme", "email": spellings[i % 3], "first_name": f"N{i}"} for i in range(THREADS)]
    # when
    outcome = run_in_parallel(
        api_key.secret,
        [partial(APIClient.post, path="/api/contacts.upsert", data=body, format="json") for body in bodies],
    )
    # then
    outcome.assert_every_call_answered(200, THREADS)
    assert Contact.objects.count() == 1
    assert [b["operation"] for b in outcome.bodies].count("created") == 1
    assert TimelineEntry.objects.filter(kind="contact.created").count() == 1


def test_a_drain_s_release_and_a_write_re_queueing_its_contacts_never_deadlock(workspace: Any) -> None:
    """A write re-queues two contacts of a running drain's claim, the lower id first, and waits
    between the two; the drain releases its claim meanwhile. The release locks in contact id
    order as writes do, so it waits for the write, which then finishes: no deadlock, and both
    contacts stay queued for the next drain (their change came after the claim). Released in
    the scan's order (the higher id's row stored first), each held a row the other wanted."""
    import time

    from django.db import transaction

    from contacts import refresh
    from contacts.models import PendingContactRefresh

    # given: contacts low < high, queued high first (so stored first), both claimed by a drain
    low, high = (Contact.objects.create(workspace=workspace, email=f"{n}@x.io") for n in ("low", "high"))
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[high.pk])
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[low.pk])
    token, claimed = refresh._claim_pending(workspace.id, 10, datetime.now(UTC))
    assert sorted(claimed) == [low.pk, high.pk]
    first_queued = threading.Event()
    errors: list[str] = []

    def write() -> None:
        try:
            with transaction.atomic():
                refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[low.pk])
                first_queued.set()
                time.sleep(0.5)  # the release starts meanwhile
                refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[high.pk])
        except Exception as exc:
            errors.append(f"write: {exc}")
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert first_queued.wait(10)
    # when the drain releases its claim (in its transaction) while the write is under way
    try:
        with transaction.atomic():
            refresh._release_claim(workspace.id, token, done=True)
    except Exception as exc:
        errors.append(f"release: {exc}")
    writer.join(30)
    # then
    assert errors == []
    queued = PendingContactRefresh.objects.filter(workspace_id=workspace.id)
    assert sorted(queued.values_list("contact_id", "claim_token")) == [(low.pk, ""), (high.pk, "")]
