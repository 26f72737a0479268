"""Event insert entries stop copying the event: their ``changes`` become ``{}`` (``contacts/changes.py``).

Set-based, in batches of event ids, each batch its own transaction (the migration is not
atomic), so no lock is held for long and an interrupted run resumes where it stopped: a batch
only touches rows not yet lean. An entry is made lean only when nothing can be lost, checked
row by row in SQL: its event was never changed after the insert (``updated_at = created_at``
and no later entry), and its stored changes are exactly what the readers rebuild from the
event row (every field's value, timestamps compared as instants, amounts as numbers). Anything
else keeps its changes, which the readers show as stored.

Backwards, lean entries get their changes back from the event row and the "old" values of the
event's later entries (PostgreSQL; on SQLite from the event row).

Frozen SQL, not the services' code, so later changes to the services never change what this
migration did. The space the old values took is reusable by new rows after the next VACUUM
(autovacuum); returning it to the file system takes VACUUM FULL or pg_repack.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.db import migrations

BATCH = 100_000

# The fields an insert entry wrote, in order: (key, column, kind).
TEXT_FIELDS = ["event_name", "external_id", "source", "integration_id", "goal_type", "goal_name"]


def _pg_expected_without_special() -> str:
    """The stored changes less occurred_at, goal_value and deleted_at (compared apart), as PostgreSQL
    builds them from the event row: a field is present when set (not NULL, '' or {})."""
    parts = [
        f"CASE WHEN e.{c} IS NOT NULL AND e.{c} <> '' "
        f"THEN jsonb_build_object('{c}', jsonb_build_object('new', e.{c})) ELSE '{{}}'::jsonb END"
        for c in TEXT_FIELDS
    ]
    parts.append(
        "CASE WHEN e.properties IS NOT NULL AND e.properties NOT IN ('{}'::jsonb, '\"\"'::jsonb, 'null'::jsonb) "
        "THEN jsonb_build_object('properties', jsonb_build_object('new', e.properties)) ELSE '{}'::jsonb END"
    )
    return " || ".join(parts)


def _pg_instant(key: str) -> str:
    text = f"t.changes->'{key}'->>'new'"
    return f"(CASE WHEN {text} ~ '^\\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d' THEN ({text})::timestamptz END)"


PG_FORWARD = f"""
UPDATE contacts_timelineentry t SET changes = '{{}}'::jsonb
FROM contacts_customevent e
WHERE e.id >= %s AND e.id < %s
  AND t.custom_event_id = e.id
  AND t.operation = 'insert'
  AND t.changes <> '{{}}'::jsonb
  AND e.updated_at = e.created_at
  AND NOT EXISTS (
      SELECT 1 FROM contacts_timelineentry l
      WHERE l.custom_event_id = e.id AND l.operation <> 'insert'
  )
  AND (t.changes - 'occurred_at' - 'goal_value' - 'deleted_at') = ({_pg_expected_without_special()})
  AND {_pg_instant("occurred_at")} = e.occurred_at
  AND (t.changes ? 'deleted_at') = (e.deleted_at IS NOT NULL)
  AND (e.deleted_at IS NULL OR {_pg_instant("deleted_at")} = e.deleted_at)
  AND (t.changes ? 'goal_value') = (e.goal_value IS NOT NULL)
  AND (e.goal_value IS NULL OR (CASE WHEN jsonb_typeof(t.changes->'goal_value'->'new') = 'number'
       THEN (t.changes->'goal_value'->>'new')::numeric END) = e.goal_value)
"""

# Backwards: each field's first version is the "old" of the first later entry that changed it,
# else the row's value (as contacts/changes.py rebuilds it); unset values are left out.
_PG_FIRST = (
    "COALESCE((SELECT l.changes->'{key}'->'old' FROM contacts_timelineentry l "
    "WHERE l.custom_event_id = e.id AND l.operation <> 'insert' AND l.changes ? '{key}' ORDER BY l.id LIMIT 1), "
    "{value})"
)


def _pg_iso(column: str) -> str:
    """An instant as the old code wrote it (Python's ``isoformat()`` in UTC): microseconds in six
    digits when there are any. ``to_jsonb(timestamptz)`` trims trailing zeros (``.12`` for
    ``.120000``), so a reverse migration would not give back the text it had removed."""
    return (
        f"to_jsonb(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        f"CASE WHEN date_part('microseconds', {column})::bigint %% 1000000 = 0 THEN '' "
        f"ELSE to_char({column} AT TIME ZONE 'UTC', '.US') END || '+00:00')"
    )


_PG_VALUES = ", ".join(
    f"('{key}', {_PG_FIRST.format(key=key, value=value)})"
    for key, value in [
        ("event_name", "to_jsonb(e.event_name)"),
        ("external_id", "to_jsonb(e.external_id)"),
        ("occurred_at", _pg_iso("e.occurred_at")),
        ("properties", "e.properties"),
        ("source", "to_jsonb(e.source)"),
        ("integration_id", "to_jsonb(e.integration_id)"),
        ("goal_type", "to_jsonb(e.goal_type)"),
        ("goal_name", "to_jsonb(e.goal_name)"),
        ("goal_value", "to_jsonb(e.goal_value::float8)"),
        ("deleted_at", _pg_iso("e.deleted_at")),
    ]
)
PG_BACKWARD = f"""
UPDATE contacts_timelineentry t SET changes = COALESCE((
    SELECT jsonb_object_agg(f.key, jsonb_build_object('new', f.value))
    FROM (VALUES {_PG_VALUES}) AS f(key, value)
    WHERE f.value IS NOT NULL AND f.value NOT IN ('null'::jsonb, '{{}}'::jsonb, '""'::jsonb)
), '{{}}'::jsonb)
FROM contacts_customevent e
WHERE e.id >= %s AND e.id < %s
  AND t.custom_event_id = e.id AND t.operation = 'insert' AND t.changes = '{{}}'::jsonb
"""

# SQLite (the embedded mode's small databases): the same checks with its JSON functions;
# instants compare to the millisecond (SQLite's date functions' precision): the never-changed
# condition is what guarantees the row holds the inserted version, the values are a check.
_SQLITE_TEXT_CHECKS = " AND ".join(
    f"(CASE WHEN e.{c} IS NOT NULL AND e.{c} <> '' THEN json_extract(t.changes, '$.{c}.new') IS e.{c} "
    f"ELSE json_type(t.changes, '$.{c}') IS NULL END)"
    for c in TEXT_FIELDS
)
SQLITE_FORWARD = f"""
UPDATE contacts_timelineentry AS t SET changes = '{{}}'
WHERE t.custom_event_id >= %s AND t.custom_event_id < %s
  AND t.operation = 'insert' AND json(t.changes) <> '{{}}'
  AND NOT EXISTS (
      SELECT 1 FROM contacts_timelineentry l
      WHERE l.custom_event_id = t.custom_event_id AND l.operation <> 'insert'
  )
  AND EXISTS (
      SELECT 1 FROM contacts_customevent e
      WHERE e.id = t.custom_event_id AND e.updated_at = e.created_at
        AND {_SQLITE_TEXT_CHECKS}
        AND (CASE WHEN e.properties IS NOT NULL AND json(e.properties) NOT IN ('{{}}', '""', 'null')
             THEN json_extract(t.changes, '$.properties.new') = json(e.properties)
             ELSE json_type(t.changes, '$.properties') IS NULL END)
        AND julianday(json_extract(t.changes, '$.occurred_at.new')) = julianday(e.occurred_at)
        AND (CASE WHEN e.deleted_at IS NOT NULL
             THEN julianday(json_extract(t.changes, '$.deleted_at.new')) = julianday(e.deleted_at)
             ELSE json_type(t.changes, '$.deleted_at') IS NULL END)
        AND (CASE WHEN e.goal_value IS NOT NULL
             THEN CAST(json_extract(t.changes, '$.goal_value.new') AS REAL) = CAST(e.goal_value AS REAL)
             ELSE json_type(t.changes, '$.goal_value') IS NULL END)
        AND (SELECT count(*) FROM json_each(t.changes)) =
            (SELECT count(*) FROM json_each(json_object(
                'event_name', e.event_name, 'external_id', NULLIF(e.external_id, ''),
                'occurred_at', e.occurred_at, 'source', NULLIF(e.source, ''),
                'integration_id', NULLIF(e.integration_id, ''), 'goal_type', NULLIF(e.goal_type, ''),
                'goal_name', NULLIF(e.goal_name, ''), 'goal_value', e.goal_value, 'deleted_at', e.deleted_at,
                'properties', CASE WHEN json(e.properties) IN ('{{}}', '""', 'null') THEN NULL ELSE 1 END
            )) WHERE type <> 'null')
  )
"""


def _sqlite_iso(column: str) -> str:
    # Django stores "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC on SQLite; the entries held isoformat().
    return f"replace({column}, ' ', 'T') || '+00:00'"


SQLITE_BACKWARD = f"""
UPDATE contacts_timelineentry AS t SET changes = (
    SELECT json_group_object(
        f.key, json_object('new', CASE WHEN f.type IN ('object', 'array') THEN json(f.value) ELSE f.value END)
    )
    FROM contacts_customevent e, json_each(json_object(
        'event_name', e.event_name, 'external_id', NULLIF(e.external_id, ''),
        'occurred_at', {_sqlite_iso("e.occurred_at")},
        'properties', CASE WHEN json(e.properties) IN ('{{}}', '""', 'null') THEN NULL ELSE json(e.properties) END,
        'source', NULLIF(e.source, ''), 'integration_id', NULLIF(e.integration_id, ''),
        'goal_type', NULLIF(e.goal_type, ''), 'goal_name', NULLIF(e.goal_name, ''),
        'goal_value', CAST(e.goal_value AS REAL),
        'deleted_at', CASE WHEN e.deleted_at IS NOT NULL THEN {_sqlite_iso("e.deleted_at")} END
    )) AS f
    WHERE e.id = t.custom_event_id AND f.type <> 'null'
)
WHERE t.custom_event_id >= %s AND t.custom_event_id < %s
  AND t.operation = 'insert' AND json(t.changes) = '{{}}'
"""


def _in_batches(schema_editor: Any, sql: str, label: str) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        # Batches of event ids: each reaches its events by their primary key and their entries by
        # the timeline's index of the event (a batch of timeline ids would scan all the events).
        cursor.execute("SELECT MIN(id), MAX(id) FROM contacts_customevent")
        low, high = cursor.fetchone()
    if low is None:
        return
    batches = (high - low) // BATCH + 1
    started = time.monotonic()
    changed = 0
    for number, start in enumerate(range(low, high + 1, BATCH), start=1):
        with connection.cursor() as cursor:
            cursor.execute(sql, [start, start + BATCH])
            changed += max(cursor.rowcount, 0)
        if batches > 1:
            elapsed = time.monotonic() - started
            sys.stdout.write(f"\n  {label}: batch {number}/{batches}, {changed:,} entries, {elapsed:.0f} s")
            sys.stdout.flush()


def forward(apps: Any, schema_editor: Any) -> None:
    sql = PG_FORWARD if schema_editor.connection.vendor == "postgresql" else SQLITE_FORWARD
    _in_batches(schema_editor, sql, "lean insert entries")


def backward(apps: Any, schema_editor: Any) -> None:
    sql = PG_BACKWARD if schema_editor.connection.vendor == "postgresql" else SQLITE_BACKWARD
    _in_batches(schema_editor, sql, "insert entries' changes back")


class Migration(migrations.Migration):
    # Each batch commits on its own: no long transaction, no long lock, resumable.
    atomic = False

    dependencies = [
        ("contacts", "0005_pending_contact_refresh_moves_here"),
    ]

    operations = [
        migrations.RunPython(forward, backward, elidable=True),
    ]
