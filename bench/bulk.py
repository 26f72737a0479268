"""The bulk load: the same seeded dataset as ``bench.dataset`` (same contacts, events, values,
times and deletions), written by COPY instead of ``events_upsert``, for sizes the API path
cannot load in reasonable time (10M events would take an hour through batches of 50).

What it writes is what the API path leaves behind: contacts (created at their first event),
their ``contact.created`` timeline entries (one INSERT ... SELECT from the loaded contacts) and
the events (source ``import``; an event's insert entry is its row, contacts migration 0011), then
the contact totals and the dashboard's activity rows (``bench.run``).
The tables' secondary indexes and unique/foreign-key constraints are dropped for the load and
re-created from their own definitions afterwards (whatever the migrations made them), which is
how PostgreSQL loads fastest; the row content does not depend on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from bench import dataset

TABLES = ("contacts_contact", "contacts_customevent", "contacts_timelineentry")
COPY_CHUNK = 50_000
# Rows per INSERT ... SELECT (a progress step; each is its own transaction).
SQL_CHUNK = 500_000

CONTACT_ENTRIES_SQL = """
INSERT INTO contacts_timelineentry
    (workspace_id, contact_id, kind, operation, entity_type, entity_id, custom_event_id, changes,
     created_at, db_created_at)
SELECT c.workspace_id, c.id, 'contact.created', 'insert', 'contact', c.id::text, NULL,
       jsonb_build_object('email', jsonb_build_object('new', c.email)), c.created_at, c.created_at
FROM contacts_contact c WHERE c.workspace_id = %(ws)s
"""


def _saved_definitions(conn: psycopg.Connection[Any]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(table, constraint, definition) of the unique and foreign-key constraints, and the CREATE
    INDEX statements of the other non-primary-key indexes, of the loaded tables."""
    constraints = [
        (table, name, definition)
        for table, name, definition in conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
            [list(TABLES)],
        )
    ]
    indexes = [
        definition
        for (definition,) in conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
            [list(TABLES)],
        )
    ]
    return constraints, indexes


def _index_name(definition: str) -> str:
    return definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]


def _drop(conn: psycopg.Connection[Any], constraints: list[tuple[str, str, str]], indexes: list[str]) -> None:
    for table, name, _ in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for definition in indexes:
        conn.execute(f"DROP INDEX {_index_name(definition)}")


def _restore(
    conn: psycopg.Connection[Any], constraints: list[tuple[str, str, str]], indexes: list[str], progress: Any
) -> None:
    # Unique constraints first (the foreign keys may point at them), foreign keys last.
    ordered = sorted(constraints, key=lambda item: 0 if item[2].startswith("UNIQUE") else 1)
    steps = [*indexes, *(f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in ordered)]
    with progress(total=len(steps), desc="indexes and constraints", unit="step") as bar:
        for statement in steps:
            conn.execute(statement)
            bar.update(1)


def _lookups(conn: psycopg.Connection[Any]) -> None:
    """Tables of what ``bench.dataset`` derives from an event's kind and serial, filled from its own
    functions, so the SQL below expands compact events exactly as the Python loader does."""
    conn.execute(
        "CREATE TEMP TABLE bench_kind (kind int PRIMARY KEY, event_name text, prefix text, goal_type text, "
        "goal_name text, valued bool)"
    )
    conn.execute(
        "CREATE TEMP TABLE bench_properties (kind int, residue int, properties jsonb, PRIMARY KEY (kind, residue))"
    )
    with conn.cursor() as cursor:
        with cursor.copy("COPY bench_kind FROM STDIN") as copy:
            for kind, (name, prefix, goal_type) in enumerate(dataset.KINDS):
                goal = dataset.goal_for(kind, 1)
                copy.write_row((kind, name, prefix, goal_type, goal.get("goal_name"), "goal_value" in goal))
        with cursor.copy("COPY bench_properties FROM STDIN") as copy:
            for kind in range(len(dataset.KINDS)):
                for residue in range(dataset.PROPERTY_PERIOD):
                    properties = dataset.properties_for(kind, residue)
                    properties.pop("order_id", None)  # the one serial-specific value, added in SQL
                    copy.write_row((kind, residue, json.dumps(properties)))


# The compact events (bench.dataset.Event, numbered in time order) expanded to stored rows.
EVENTS_SQL = """
INSERT INTO contacts_customevent
    (id, workspace_id, contact_id, event_name, external_id, properties, occurred_at, source, integration_id,
     goal_type, goal_name, goal_value, deleted_at, created_at, updated_at)
SELECT s.number, %(ws)s, s.contact_id, k.event_name, k.prefix || '-' || lpad(s.serial::text, 8, '0'),
       p.properties || CASE WHEN s.kind IN (%(purchase)s, %(refund)s)
                            THEN jsonb_build_object('order_id', 'o' || s.serial) ELSE '{}'::jsonb END,
       o.occurred_at, 'import', NULL, k.goal_type, k.goal_name,
       CASE WHEN k.valued THEN s.cents / 100.0 END, o.deleted_at, o.occurred_at, coalesce(o.deleted_at, o.occurred_at)
FROM bench_staging s
JOIN bench_kind k ON k.kind = s.kind
JOIN bench_properties p ON p.kind = s.kind AND p.residue = s.serial %% %(period)s
CROSS JOIN LATERAL (SELECT %(anchor)s::timestamptz - make_interval(secs => s.ago) AS occurred_at) t
CROSS JOIN LATERAL (
    SELECT t.occurred_at, CASE WHEN s.deleted_after > 0
        THEN least(%(anchor)s::timestamptz, t.occurred_at + make_interval(secs => s.deleted_after)) END AS deleted_at
) o
WHERE s.number BETWEEN %(low)s AND %(high)s
"""


def load(
    *, dsn: str, workspace_id: str, spec: dataset.Spec, anchor: datetime, progress: Callable[..., Any]
) -> dict[str, Any]:
    """Generate the dataset and COPY it into the (migrated, otherwise empty) workspace; returns timings."""
    started = time.perf_counter()
    events = dataset.generate(spec)
    generated = time.perf_counter() - started
    # Contacts in the order they first appear (the API path creates them in that order).
    first_seen: dict[int, datetime] = {}
    for event in events:
        first_seen.setdefault(event.contact, anchor - timedelta(seconds=event.ago))
    contact_ids = {contact: number for number, contact in enumerate(first_seen, start=1)}
    total = len(events)
    timings: dict[str, Any] = {"generate_s": round(generated, 2)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        constraints, indexes = _saved_definitions(conn)
        _drop(conn, constraints, indexes)
        began = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY contacts_contact (id, workspace_id, email, external_id, first_name, last_name, properties, "
                "created_at, updated_at) FROM STDIN"
            ) as copy:
                for contact, number in contact_ids.items():
                    seen = first_seen[contact]
                    email = dataset.contact_email(contact, spec.heavy_contacts)
                    copy.write_row((number, workspace_id, email, "", "", "", "{}", seen, seen))
            conn.execute(
                "CREATE UNLOGGED TABLE bench_staging (number int, ago int, contact_id int, kind int, cents int, "
                "deleted_after int, serial int)"
            )
            bar = progress(total=total, desc="COPY events (compact)", unit="ev")
            with bar, cursor.copy("COPY bench_staging FROM STDIN") as copy:
                for low in range(0, total, COPY_CHUNK):
                    chunk = events[low : low + COPY_CHUNK]
                    copy.write(
                        "".join(
                            f"{number}\t{e.ago}\t{contact_ids[e.contact]}\t{e.kind}\t{e.cents}\t"
                            f"{e.deleted_after}\t{e.serial}\n"
                            for number, e in enumerate(chunk, start=low + 1)
                        )
                    )
                    bar.update(len(chunk))
        # The rows sit in number order: a BRIN index finds each chunk's pages.
        conn.execute("CREATE INDEX ON bench_staging USING brin (number)")
        del events
        _lookups(conn)
        params = {
            "ws": workspace_id,
            "anchor": anchor,
            "period": dataset.PROPERTY_PERIOD,
            "purchase": dataset.PURCHASE,
            "refund": dataset.REFUND,
        }
        with progress(total=total, desc="events", unit="ev") as bar:
            for low in range(1, total + 1, SQL_CHUNK):
                high = min(total, low + SQL_CHUNK - 1)
                conn.execute(EVENTS_SQL, {**params, "low": low, "high": high})
                bar.update(high - low + 1)
        conn.execute("DROP TABLE bench_staging")
        timings["copy_s"] = round(time.perf_counter() - began, 1)
        # The ids were written explicitly: the sequences go past them before the timeline's
        # entries draw theirs (from the events' sequence, migration 0011).
        for table in TABLES[:2]:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        began = time.perf_counter()
        conn.execute(CONTACT_ENTRIES_SQL, {"ws": workspace_id})
        timings["timeline_s"] = round(time.perf_counter() - began, 1)
        began = time.perf_counter()
        _restore(conn, constraints, indexes, progress)
        timings["indexes_s"] = round(time.perf_counter() - began, 1)
    seconds = time.perf_counter() - started
    timings.update(
        {
            "load_s": round(seconds, 1),
            "events": total,
            "path": "COPY",
            "events_per_s": round(total / seconds, 1) if seconds else None,
        }
    )
    return timings
