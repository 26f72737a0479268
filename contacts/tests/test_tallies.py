"""The contact count's tally (``ContactTally``, kept by triggers: migration 0010) against the
contacts themselves, after every kind of write that creates or deletes contacts, and the generic
compaction (``events_platform.tallies``) it shares with the dashboard's activity."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from contacts import activity
from contacts.models import Contact, ContactTally
from contacts.selectors import contact_count
from contacts.services import ContactInput, EventInput, contact_delete, contacts_upsert, events_upsert
from events_platform import tallies
from events_platform.workspaces.models import Workspace

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WORKSPACES = ("acme", "globex")


def _assert_counts() -> None:
    """Each workspace's tally is its number of contacts (an independent COUNT)."""
    stored = Counter(Contact.objects.values_list("workspace_id", flat=True))
    for workspace_id in {*WORKSPACES, *stored}:
        assert contact_count(workspace_id=workspace_id) == stored[workspace_id], workspace_id


def _email(rng: random.Random) -> str:
    return f"c{rng.randrange(40)}@example.com"


def _write(rng: random.Random, step: int) -> None:
    """One random write that creates or deletes contacts, by any of the paths that do."""
    workspace_id = rng.choice(WORKSPACES)
    kind = rng.randrange(8)
    if kind == 0:  # the ingest creates the events' contacts
        events = [
            EventInput(email=_email(rng), event_name="order", external_id=f"{step}-{n}", occurred_at=NOW)
            for n in range(rng.randrange(1, 6))
        ]
        events_upsert(workspace_id=workspace_id, events=events)
    elif kind == 1:  # contacts.upsert / import: new and existing
        contacts_upsert(
            workspace_id=workspace_id,
            contacts=[ContactInput(email=_email(rng), fields={"first_name": "A"}) for _ in range(rng.randrange(1, 5))],
        )
    elif kind == 2:  # the ORM (admin, tests, scripts), one and many
        email = _email(rng)
        if not Contact.objects.filter(workspace_id=workspace_id, email=email).exists():
            Contact.objects.create(workspace_id=workspace_id, email=email)
    elif kind == 3:
        taken = set(Contact.objects.filter(workspace_id=workspace_id).values_list("email", flat=True))
        free = sorted({_email(rng) for _ in range(4)} - taken)
        Contact.objects.bulk_create([Contact(workspace_id=workspace_id, email=email) for email in free])
    elif kind == 4:  # the erasure (its cascade deletes the contact)
        contact_delete(workspace_id=workspace_id, email=_email(rng))
    elif kind == 5:  # a queryset delete of several
        Contact.objects.filter(workspace_id=workspace_id, email__in=[_email(rng) for _ in range(3)]).delete()
    elif kind == 6:  # raw SQL, one multi-row statement
        table = connection.ops.quote_name(Contact._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (workspace_id, email, external_id, first_name, last_name, properties, "
                "created_at, updated_at) VALUES (%s, %s, '', '', '', '{}', %s, %s), (%s, %s, '', '', '', '{}', %s, %s)",
                [workspace_id, f"raw{step}a@example.com", NOW, NOW, workspace_id, f"raw{step}b@example.com", NOW, NOW],
            )
    else:
        assert activity.contact_tally_compact() >= 0


@pytest.mark.parametrize("seed", range(4))
def test_the_contact_count_equals_the_contacts_after_any_writes(db: None, seed: int) -> None:
    """Random writes by every path that creates or deletes contacts, with compactions between:
    after each, ``contact_count`` (the tally) is each workspace's number of contacts."""
    for workspace_id in WORKSPACES:
        Workspace.objects.create(id=workspace_id, name=workspace_id)
    rng = random.Random(seed)
    for step in range(40):
        _write(rng, step)
        _assert_counts()
    activity.contact_tally_compact()
    _assert_counts()
    rows = Counter(ContactTally.objects.values_list("workspace_id", flat=True))
    assert all(n == 1 for n in rows.values()), rows  # one row per workspace once compacted


def test_a_workspace_deleted_leaves_rows_that_sum_to_nothing_and_the_compaction_drops_them(db: None) -> None:
    for workspace_id in WORKSPACES:
        Workspace.objects.create(id=workspace_id, name=workspace_id)
        events_upsert(
            workspace_id=workspace_id,
            events=[
                EventInput(email=f"{n}@example.com", event_name="o", external_id=str(n), occurred_at=NOW)
                for n in range(3)
            ],
        )
    Workspace.objects.filter(id="globex").delete()
    assert contact_count(workspace_id="globex") == 0
    assert contact_count(workspace_id="acme") == 3
    activity.contact_tally_compact()
    assert list(ContactTally.objects.values_list("workspace_id", "contacts")) == [("acme", 3)]


def test_compact_folds_keys_to_their_coarser_value_and_keeps_every_sum(db: None) -> None:
    """``tallies.compact`` with ``fold_to``: rows move to the folded key and sum there; keys that
    sum to nothing go; a second compaction finds nothing to do."""
    Workspace.objects.create(id="acme", name="Acme")
    day = datetime(2026, 1, 5, tzinfo=UTC)
    rows = [(day, 2), (day + timedelta(minutes=15), 3), (day + timedelta(days=40), 1), (day + timedelta(days=40), -1)]
    for bucket, events in rows:
        activity.EventActivity.objects.create(workspace_id="acme", bucket=bucket, events=events, revenue=0)
    month = (
        "date_trunc('month', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        if connection.vendor == "postgresql"
        else "strftime('%%Y-%%m-01 00:00:00', bucket)"
    )
    by_month = tallies.Tally(
        table=activity.EventActivity._meta.db_table,
        keys=("workspace_id", "bucket"),
        sums={"events": "SUM(events)", "revenue": "ROUND(SUM(revenue), 2)"},
        lock=1,
        fold_to={"bucket": month},
    )
    assert tallies.compact(by_month) == 3
    assert list(activity.EventActivity.objects.values_list("bucket", "events")) == [
        (datetime(2026, 1, 1, tzinfo=UTC), 5)
    ]
    assert tallies.compact(by_month) == 0


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_contacts_stored_before_it() -> None:
    """0010 fills one row per workspace from the contacts stored before it; its triggers count
    every contact written after."""
    before = ("contacts", "0009_event_activity")
    MigrationExecutor(connection).migrate([before])
    try:
        old_apps = MigrationExecutor(connection).loader.project_state(before).apps
        workspace = old_apps.get_model("workspaces", "Workspace")
        contact = old_apps.get_model("contacts", "Contact")
        for workspace_id, n in (("acme", 3), ("globex", 1)):
            workspace.objects.create(id=workspace_id, name=workspace_id)
            for i in range(n):
                contact.objects.create(workspace_id=workspace_id, email=f"{i}@example.com")
        # when
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        # then
        assert sorted(ContactTally.objects.values_list("workspace_id", "contacts")) == [("acme", 3), ("globex", 1)]
        Contact.objects.create(workspace_id="globex", email="new@example.com")
        Contact.objects.filter(workspace_id="acme", email="0@example.com").delete()
        assert (contact_count(workspace_id="acme"), contact_count(workspace_id="globex")) == (2, 2)
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_a_rebuild_repairs_a_tally_the_triggers_could_not_keep(db: None) -> None:
    """Rows lost (a TRUNCATE fires no trigger) or wrong: ``contact_tally_rebuild`` recounts."""
    for workspace_id in WORKSPACES:
        Workspace.objects.create(id=workspace_id, name=workspace_id)
    events_upsert(
        workspace_id="acme",
        events=[
            EventInput(email=f"{n}@example.com", event_name="o", external_id=str(n), occurred_at=NOW) for n in range(4)
        ],
    )
    Contact.objects.create(workspace_id="globex", email="g@example.com")
    ContactTally.objects.filter(workspace_id="acme").delete()
    ContactTally.objects.create(workspace_id="globex", contacts=41)
    assert (contact_count(workspace_id="acme"), contact_count(workspace_id="globex")) == (0, 42)
    # when
    assert activity.contact_tally_rebuild() == 2
    # then
    assert (contact_count(workspace_id="acme"), contact_count(workspace_id="globex")) == (4, 1)
    Contact.objects.filter(workspace_id="acme", email="0@example.com").delete()  # the triggers go on
    assert contact_count(workspace_id="acme") == 3
