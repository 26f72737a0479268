"""Writes for contacts, custom events and their timeline.

Every write that spans rows is one transaction; the timeline entry of each change is written
in the same transaction as the change (an event's insert entry is the event row itself,
``models.TimelineEntry``), and so is "this contact changed": the contacts whose
data changed are queued for the refresh of every read model built on them (``refresh.py``:
totals, and through its drain hooks segments) by a statement of the write itself, so no
committed change can miss its refresh. After the commit (inside a request, once the response
is sent) a drain of that queue is published and ``signals.contacts_changed`` is sent; if that
step is lost (broker down, worker killed), the refresh sweep drains the queue.

Upsert rule for events (per (workspace, event_name, external_id)):
- absent: inserted ("created").
- present, and the incoming ``deleted_at`` state differs from the stored one: soft delete
  ("deleted") or restore ("restored"); when the incoming ``occurred_at`` is also newer, the
  other fields are applied too.
- present, same deleted state, incoming ``occurred_at`` strictly newer: "updated";
  ``properties`` replaced whole, goal fields that were sent replace the stored ones, goal
  fields that were omitted are kept.
- otherwise "unchanged": nothing is written, no timeline entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Model, Q
from django.utils import timezone

from events_platform.after_response import defer
from events_platform.conflicts import WriteConflict
from events_platform.prepared import prepared_cursor
from events_platform.workspaces.planning import WORKSPACE_PARAM, workspace_value

from . import activity, refresh
from .changes import EVENT_VERSION_FIELDS, TRACKED_CONTACT_FIELDS, contact_snapshot, diff, event_snapshot
from .changes import GOAL_FIELDS as GOAL_FIELDS  # the API's serializers read it here
from .models import PROFILE_FIELD_TYPES, Contact, CustomEvent, StoredTimelineEntry, merged_properties, normalize_email
from .signals import changes_written, contacts_changed


class Operation:
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    RESTORED = "restored"


@dataclass(frozen=True)
class EventInput:
    """One validated incoming event. ``goal`` holds only the goal fields that were sent."""

    email: str
    event_name: str
    external_id: str
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    source: str = CustomEvent.Source.API
    integration_id: str | None = None
    goal: dict[str, Any] = field(default_factory=dict)
    deleted_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.event_name, self.external_id)


@dataclass(frozen=True)
class EventChange:
    """One effective step of an upsert, as ``changes_written`` announces it: the operation
    (never ``unchanged``) and the event's stored values right after it (field attnames, plus
    ``email``: the contact's)."""

    operation: str
    values: dict[str, Any]


@dataclass(frozen=True)
class EventUpsertResult:
    event: CustomEvent
    operation: str


# ---------------------------------------------------------------------------------------
# Low-level: INSERT ... ON CONFLICT DO NOTHING RETURNING, on PostgreSQL and SQLite alike.
# Django's bulk_create(ignore_conflicts=True) cannot say which rows it inserted; this can,
# which is what tells "we created it" from "a concurrent request created it first".
# ---------------------------------------------------------------------------------------


def _insert_rows(
    model: type[Model],
    rows: Sequence[dict[str, Any]],
    *,
    conflict_fields: Sequence[str] = (),
    returning: Sequence[str] = (),
    along: tuple[str, list[Any]] | None = None,
) -> list[tuple[Any, ...]]:
    """One INSERT (optionally ON CONFLICT DO NOTHING ... RETURNING) for all rows.

    On PostgreSQL the rows travel as ONE JSON parameter read by ``json_to_recordset``: the
    statement text is the same for every batch size, and the values are encoded by the json
    module in C instead of being prepared and quoted one by one (client-side binding quotes
    array and row parameters element by element in Python, which cost more than the SQL).
    Elsewhere it is one multi-row VALUES list; unlike bulk_create it never splits the rows
    (Django caps SQLite at 999 parameters; the SQLite we run takes 32,766), so a batch costs
    one statement either way.

    ``along`` is another write (sql, params) to run with this one: on PostgreSQL inside it, as
    a data-modifying CTE that costs no statement of its own; elsewhere, or with no rows, just
    before it.
    """
    if along is not None and (not rows or connection.vendor != "postgresql"):
        with connection.cursor() as cursor:
            cursor.execute(*along)
        along = None
    if not rows:
        return []
    sql, params = _insert_statement(model, rows, conflict_fields=conflict_fields, returning=returning)
    if along is not None:
        sql, params = f"WITH along AS ({along[0]}) {sql}", [*along[1], *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if returning else []


def _insert_statement(
    model: type[Model],
    rows: Sequence[dict[str, Any]],
    *,
    conflict_fields: Sequence[str] = (),
    returning: Sequence[str] = (),
    where: str = "",
    source: str | None = None,
) -> tuple[str, list[Any]]:
    """The INSERT of ``_insert_rows``; ``where`` (PostgreSQL only) filters the rows, read as
    ``r.<column>``. ``source`` (PostgreSQL only): the name of a relation of the caller's
    statement that holds ``rows`` already (``_recordset``'s, as a CTE), read instead of a
    parameter of their own."""
    meta = model._meta
    fields = [_stored_field(model, name) for name in rows[0]]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    params: list[Any]
    if connection.vendor == "postgresql":
        if source is None:
            source, params = _recordset(model, rows)
        else:
            source, params = f"{source} AS r", []
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {columns} FROM {source}"
        if where:
            sql += f" WHERE {where}"
    else:
        assert not where, "a filtered insert is PostgreSQL's"
        placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
        params = [f.get_db_prep_save(row[f.name], connection) for row in rows for f in fields]
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([placeholder] * len(rows))}"
    if conflict_fields:
        sql += f" ON CONFLICT ({', '.join(quote(_stored_field(model, n).column) for n in conflict_fields)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(quote(_stored_field(model, n).column) for n in returning)}"
    return sql, params


def _recordset(model: type[Model], rows: Sequence[dict[str, Any]]) -> tuple[str, list[Any]]:
    """PostgreSQL: ``rows`` (field name -> value) as ONE JSON parameter read by
    ``json_to_recordset``, typed by ``model``'s columns: the FROM item (alias ``r``) and its
    parameter."""
    fields = [_stored_field(model, name) for name in rows[0]]
    quote = connection.ops.quote_name
    record = ", ".join(f"{quote(f.column)} {_db_type(f)}" for f in fields)
    params = [json.dumps([{f.column: row[f.name] for f in fields} for row in rows], default=_json_default)]
    return f"json_to_recordset(%s::json) AS r({record})", params


@functools.cache
def _stored_field(model: type[Model], name: str) -> Field[Any, Any]:
    """``model``'s field ``name``, one with a column (``get_field`` also finds reverse relations)."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field


@functools.cache
def _db_type(field: Field[Any, Any]) -> str:
    db_type = field.db_type(connection)
    assert db_type is not None, f"{field} has no column"
    return db_type


def _json_default(value: Any) -> str:
    """Values json cannot encode, as text their PostgreSQL column types read back exactly."""
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            raise ValueError(f"naive datetime {value!r} cannot be stored")
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _lock_ids(workspace_id: str, keys: Sequence[tuple[str, str]]) -> list[int]:
    """The transaction advisory locks that serialise writers of the same events, sorted (the
    one global order they are taken in, by ``_contacts_ensure_postgresql``'s statement).

    Without them two overlapping batches can deadlock (one holds a row it just inserted and
    waits for a row the other locked). PostgreSQL only; SQLite runs one writer at a time.
    """
    return sorted(
        {
            int.from_bytes(
                hashlib.blake2b(f"{workspace_id}\x1f{name}\x1f{ext}".encode(), digest_size=8).digest(),
                "big",
                signed=True,
            )
            for name, ext in keys
        }
    )


# ---------------------------------------------------------------------------------------
# Contacts
# ---------------------------------------------------------------------------------------


def _contact_created_entry(contact: Contact, now: datetime) -> StoredTimelineEntry:
    changes = {name: {"new": getattr(contact, name)} for name in TRACKED_CONTACT_FIELDS if getattr(contact, name)}
    return StoredTimelineEntry(
        workspace_id=contact.workspace_id,
        contact=contact,
        kind="contact.created",
        operation=StoredTimelineEntry.Operation.INSERT,
        entity_type="contact",
        entity_id=str(contact.pk),
        changes=changes,
        created_at=now,
    )


@dataclass
class _Ensured:
    """What ``_contacts_ensure`` read and wrote."""

    contacts: dict[str, Contact]  # by email
    created: list[Contact]  # by email
    event_ids: list[int]  # the ids reserved for new events (PostgreSQL; see _contacts_ensure)
    # Change recorders with nothing to record in this workspace, by their probes (PostgreSQL;
    # see register_change_recorder): this write does not call them.
    quiet: frozenset[str] = frozenset()


def _contacts_ensure(
    *,
    workspace_id: str,
    emails: Iterable[str],
    now: datetime,
    lock_ids: Sequence[int] = (),
    event_ids: int = 0,
) -> _Ensured:
    """Get or create the contacts of these emails: one statement on PostgreSQL, two elsewhere.

    On PostgreSQL the contacts that existed are locked ``FOR KEY SHARE`` (what the events'
    foreign-key checks take anyway, so writers of the same contact do not wait for each other)
    until the commit: an erasure (``contact_delete`` locks the contact ``FOR UPDATE``) waits for
    this write, or this write waits for the erasure and then creates the contact anew. Never a
    contact erased under a half-done write.

    The same statement takes the events' advisory locks (``lock_ids``, from ``_lock_ids``), once
    the contacts are inserted and locked (the order every writer takes them in), and reserves
    ``event_ids`` ids of the events' sequence, so the events' statement can carry their timeline
    entries and everything else that names them (an id reserved for an event that turns out to
    exist is simply never used). It also reads the change recorders' probes (``quiet``).
    """
    wanted = sorted(set(emails))
    contacts: dict[str, Contact] = {}
    created: list[Contact] = []
    ids: list[int] = []
    quiet: frozenset[str] = frozenset()
    for _round in range(3):
        if connection.vendor == "postgresql":
            found, created_emails, round_ids, round_quiet = _contacts_ensure_postgresql(
                workspace_id, wanted, now, lock_ids, event_ids
            )
            ids = round_ids or ids
            quiet = round_quiet if found else quiet
        else:
            found, created_emails = _contacts_ensure_sqlite(workspace_id, wanted, now)
        contacts.update(found)
        created += [found[email] for email in wanted if email in created_emails]
        # Missing from both halves: committed by another writer after our snapshot (our insert
        # waited for it and then skipped the row), or erased while we waited for its lock.
        # The next round reads the one and creates the other.
        wanted = [email for email in wanted if email not in found]
        if not wanted:
            break
    else:
        raise WriteConflict(f"contacts {wanted} neither created nor found after 3 rounds")
    return _Ensured(contacts=contacts, created=sorted(created, key=lambda c: c.email), event_ids=ids, quiet=quiet)


def _contact_rows(workspace_id: str, wanted: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "workspace": workspace_id,
            "email": email,
            "external_id": "",
            "first_name": "",
            "last_name": "",
            "properties": {},
            "created_at": now,
            "updated_at": now,
        }
        for email in wanted
    ]


def _contacts_ensure_postgresql(
    workspace_id: str, wanted: Sequence[str], now: datetime, lock_ids: Sequence[int], event_ids: int
) -> tuple[dict[str, Contact], set[str], list[int], frozenset[str]]:
    # One statement: the insert's RETURNING plus the rows that existed, locked. Both halves
    # read one snapshot, so a contact committed concurrently between them is in neither (the
    # caller's next round reads it); so is one erased while we waited for its lock.
    columns = ", ".join(connection.ops.quote_name(f.column) for f in Contact._meta.concrete_fields)
    insert, params = _insert_statement(
        Contact,
        _contact_rows(workspace_id, wanted, now),
        conflict_fields=["workspace", "email"],
        returning=[f.name for f in Contact._meta.concrete_fields],
    )
    table = connection.ops.quote_name(Contact._meta.db_table)
    events = connection.ops.quote_name(CustomEvent._meta.db_table)
    probe_names, probes_sql, probe_params = _probes_sql(workspace_id)
    sql = (
        f"WITH new AS ({insert}), "
        # The workspace as a parameter the planner cannot estimate (events_platform/workspaces/planning.py).
        f"old AS (SELECT {columns} FROM {table} WHERE workspace_id = {WORKSPACE_PARAM} AND email = ANY(%s) "
        "ORDER BY id FOR KEY SHARE), "
        f"got AS (SELECT {columns}, true AS was_created FROM new UNION ALL SELECT {columns}, false FROM old), "
        # The advisory locks once the contacts are in hand (the count reads all of ``got``); a
        # volatile target-list function runs after the sort, so they are taken in order.
        "locked AS (SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k "
        "WHERE (SELECT count(*) FROM got) >= 0 ORDER BY k) AS l), "
        # A CTE runs once: one nextval per reserved id, however many rows read it.
        f"ids AS (SELECT array_agg(nextval(pg_get_serial_sequence('{events}', 'id'))) AS ids "
        "FROM generate_series(1, %s)), "
        f"probes AS (SELECT {probes_sql}) "
        "SELECT got.*, ids.ids, probes.* FROM got, ids, locked, probes"
    )
    fields = Contact._meta.concrete_fields
    names = [f.attname for f in fields]
    # The fields' own conversions from database values (JSON text, for one).
    convert = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*params, workspace_id, list(wanted), list(lock_ids), event_ids, *probe_params])
        rows = cursor.fetchall()
    contacts = {}
    created_emails = set()
    reserved: list[int] = []
    width = len(fields)
    # The probes are the same on every row (one-row CTE): read once.
    probed = rows[0][width + 2 : width + 2 + len(probe_names)] if rows else [True] * len(probe_names)
    quiet = frozenset(name for name, active in zip(probe_names, probed, strict=True) if not active)
    for row in rows:
        values, was_created, ids = list(row[:width]), row[width], row[width + 1]
        reserved = ids or []
        for i, from_db_value in convert:
            values[i] = from_db_value(values[i], None, connection)
        contact = Contact.from_db(connection.alias, names, values)
        contacts[contact.email] = contact
        if was_created:
            created_emails.add(contact.email)
    return contacts, created_emails, reserved, quiet


def _contacts_ensure_sqlite(
    workspace_id: str, wanted: Sequence[str], now: datetime
) -> tuple[dict[str, Contact], set[str]]:
    rows = _contact_rows(workspace_id, wanted, now)
    inserted = _insert_rows(Contact, rows, conflict_fields=["workspace", "email"], returning=["id", "email"])
    contacts = {c.email: c for c in Contact.objects.filter(workspace_id=workspace_id, email__in=wanted)}
    return contacts, {email for _, email in inserted}


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------


@dataclass
class _Step:
    """One incoming event's effect on its row, recorded while folding a batch."""

    incoming: EventInput
    operation: str
    before: dict[str, Any] | None
    after: dict[str, Any]


def _apply(event: CustomEvent, incoming: EventInput, *, apply_fields: bool) -> None:
    if apply_fields:
        event.occurred_at = incoming.occurred_at
        event.properties = incoming.properties
        event.source = incoming.source
        event.integration_id = incoming.integration_id
        for name, value in incoming.goal.items():
            setattr(event, name, value)
    event.deleted_at = incoming.deleted_at


def _fold(
    event: CustomEvent | None, incomings: Sequence[EventInput], *, workspace_id: str, contact: Contact, now: datetime
) -> tuple[CustomEvent, list[_Step]]:
    """Apply incoming versions of one event in order, as if sent one after another."""
    steps: list[_Step] = []
    for incoming in incomings:
        if event is None:
            event = CustomEvent(
                workspace_id=workspace_id,
                contact=contact,
                event_name=incoming.event_name,
                external_id=incoming.external_id,
                created_at=now,
                updated_at=now,
            )
            _apply(event, incoming, apply_fields=True)
            steps.append(_Step(incoming, Operation.CREATED, None, event_snapshot(event)))
            continue
        newer = incoming.occurred_at > event.occurred_at
        was_deleted = event.deleted_at is not None
        delete_changes = was_deleted != (incoming.deleted_at is not None)
        if not newer and not delete_changes:
            steps.append(_Step(incoming, Operation.UNCHANGED, None, event_snapshot(event)))
            continue
        before = event_snapshot(event)
        _apply(event, incoming, apply_fields=newer)
        event.updated_at = now
        if delete_changes:
            operation = Operation.RESTORED if was_deleted else Operation.DELETED
        else:
            operation = Operation.UPDATED
        steps.append(_Step(incoming, operation, before, event_snapshot(event)))
    assert event is not None
    return event, steps


def _insertable_fields(model: type[Model]) -> tuple[str, ...]:
    """Every column a bulk insert writes: all concrete fields but the generated primary key."""
    return tuple(f.name for f in model._meta.concrete_fields if not f.primary_key)


TIMELINE_FIELDS = _insertable_fields(StoredTimelineEntry)


def _timeline_statement(rows: list[dict[str, Any]], *, where: str = "") -> tuple[str, list[Any]]:
    """The INSERT of these timeline rows (field name -> database value, see ``_entry_row``), one
    statement whatever their number (``where``: see ``_insert_statement``)."""
    now = timezone.now()
    for row in rows:
        row["db_created_at"] = now
    sql, params = _insert_statement(StoredTimelineEntry, rows, where=where)
    # An event's stored insert entry is written once (``_event_entries``; unique per event).
    return f"{sql} ON CONFLICT DO NOTHING", params


def _entry_row(entry: StoredTimelineEntry) -> dict[str, Any]:
    return {name: getattr(entry, _stored_field(StoredTimelineEntry, name).attname) for name in TIMELINE_FIELDS}


# A step's stored entry (a creation stores none: the event row is its insert entry).
TIMELINE_OPERATION = {
    Operation.UPDATED: StoredTimelineEntry.Operation.UPDATE,
    Operation.DELETED: StoredTimelineEntry.Operation.DELETE,
    Operation.RESTORED: StoredTimelineEntry.Operation.RESTORE,
}


def _event_entries(event: CustomEvent, steps: Sequence[_Step], now: datetime) -> list[dict[str, Any]]:
    """The stored timeline rows of an event's effective ``steps`` in a batch, as rows for
    ``_timeline_statement`` (no model instances: a batch makes fifty of them).

    An insert writes no row: the event row is its entry (``TimelineEntry``, migration 0011),
    at the event's ``occurred_at``. The first step that moves ``occurred_at`` stores the insert
    entry at the time it had (lean: readers rebuild its changes from the event row and the
    "old" of the later entries, ``changes.event_insert_changes``); the view then shows that one,
    and an event that has one keeps it (``ON CONFLICT DO NOTHING``).
    """
    rows: list[dict[str, Any]] = []

    def row(operation: str, created_at: datetime, changes: dict[str, Any]) -> dict[str, Any]:
        return {
            "workspace": event.workspace_id,
            "contact": event.contact_id,
            "kind": f"custom_event.{event.event_name}",
            "operation": operation,
            "entity_type": "custom_event",
            "entity_id": str(event.pk),
            "custom_event": event.pk,
            "changes": changes,
            "created_at": created_at,
        }

    moved = False
    for step in steps:
        if step.operation == Operation.CREATED:
            continue
        assert step.before is not None
        if not moved and step.before["occurred_at"] != step.after["occurred_at"]:
            rows.append(row(StoredTimelineEntry.Operation.INSERT, step.before["occurred_at"], {}))
            moved = True
        # Updates sit at the event's own time; a delete or restore at when it happened.
        if step.operation == Operation.DELETED:
            created_at = step.after["deleted_at"]
        elif step.operation == Operation.RESTORED:
            created_at = now
        else:
            created_at = step.after["occurred_at"]
        rows.append(row(TIMELINE_OPERATION[step.operation], created_at, diff(step.before, step.after)))
    return rows


def _lock_events(workspace_id: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CustomEvent]:
    if not keys:
        return {}
    match = Q()
    for event_name, external_id in keys:
        match |= Q(event_name=event_name, external_id=external_id)
    rows = (
        CustomEvent.objects.select_for_update(of=("self",))
        .select_related("contact")
        .filter(match, workspace_id=workspace_value(workspace_id))  # events_platform/workspaces/planning.py
        .order_by("event_name", "external_id")
    )
    return {(e.event_name, e.external_id): e for e in rows}


def _insert_events(events: Sequence[CustomEvent]) -> dict[tuple[str, str], int]:
    names = _insertable_fields(CustomEvent)
    rows = [{name: getattr(e, _stored_field(CustomEvent, name).attname) for name in names} for e in events]
    inserted = _insert_rows(
        CustomEvent,
        rows,
        conflict_fields=["workspace", "event_name", "external_id"],
        returning=["id", "event_name", "external_id"],
    )
    return {(name, ext): pk for pk, name, ext in inserted}


@dataclass(frozen=True)
class _Write:
    """One write of a batch besides its rows (``after_commit``: called inside the transaction
    when it wrote rows; see ``RecordStatement``)."""

    sql: str
    params: list[Any]
    after_commit: Callable[[], None] | None = None

    def cte(self, name: str) -> str:
        return f"{name} AS ({self.sql}{' RETURNING 1' if self.after_commit else ''})"


def _after_written(writes: Sequence[_Write], counts: Sequence[int]) -> None:
    """Call the ``after_commit`` of each counted write (in order) that wrote rows."""
    counted = [w for w in writes if w.after_commit is not None]
    for write, count in zip(counted, counts, strict=True):
        if count and write.after_commit is not None:
            write.after_commit()


def _counts_sql(writes: Sequence[_Write]) -> list[str]:
    return [f"(SELECT count(*) FROM w{i})" for i, w in enumerate(writes) if w.after_commit is not None]


def _run_writes(writes: Sequence[_Write]) -> None:
    """Run these writes in the caller's transaction: ONE statement of data-modifying CTEs on
    PostgreSQL, one statement each elsewhere."""
    if not writes:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ctes = ", ".join(w.cte(f"w{i}") for i, w in enumerate(writes))
            cursor.execute(
                f"WITH {ctes} SELECT {', '.join(_counts_sql(writes)) or '1'}", [p for w in writes for p in w.params]
            )
            row = cursor.fetchone()
            counts = list(row) if _counts_sql(writes) else []
        else:
            counts = []
            for write in writes:
                cursor.execute(write.sql, write.params)
                if write.after_commit is not None:
                    counts.append(cursor.rowcount)
    _after_written(writes, counts)


def _insert_new_events(
    events: Sequence[CustomEvent],
    *,
    entries: list[dict[str, Any]],
    if_all_new: Callable[[str, str], list[_Write]],
) -> dict[tuple[str, str], int]:
    """PostgreSQL, the common case in ONE statement: insert these events (their ids reserved by
    ``_contacts_ensure``) as if every one were new, with the timeline ``entries`` of those that
    were (entries without an event, the contacts', always), and, when every event was new, the
    writes ``if_all_new(condition, rows)`` builds (they AND ``condition`` into their WHERE
    clause; ``rows`` names the statement's relation of the events' rows, its CTE ``src``, which
    they may read: the rows travel once).

    Returns the (event_name, external_id) -> id of the events inserted; when some already
    existed, the conditional writes wrote nothing and the caller writes them (and the timeline
    of the other events) once it has folded the stored rows.
    """
    names = ("id", *_insertable_fields(CustomEvent))
    rows = [{name: getattr(e, _stored_field(CustomEvent, name).attname) for name in names} for e in events]
    # The rows as a CTE: read once by the insert, they are inlined into it; read by a
    # conditional write too (webhooks' outbox), materialised once for both.
    recordset, params = _recordset(CustomEvent, rows)
    insert, _ = _insert_statement(
        CustomEvent,
        rows,
        conflict_fields=["workspace", "event_name", "external_id"],
        returning=["id", "event_name", "external_id"],
        source="src",
    )
    ctes = [f"src AS (SELECT * FROM {recordset})", f"ins AS ({insert})"]
    if entries:
        timeline, timeline_params = _timeline_statement(
            entries, where="r.custom_event_id IS NULL OR r.custom_event_id IN (SELECT id FROM ins)"
        )
        ctes.append(f"tl AS ({timeline})")
        params += timeline_params
    # Every conditional write reads all of ``ins`` first: the events are in before their queue.
    writes = if_all_new(f"(SELECT count(*) FROM ins) = {len(events)}", "src")
    ctes += [w.cte(f"w{i}") for i, w in enumerate(writes)]
    params += [p for w in writes for p in w.params]
    counts = "".join(f", {c}" for c in _counts_sql(writes))
    with prepared_cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} SELECT id, event_name, external_id{counts} FROM ins", params)
        inserted = cursor.fetchall()
    if len(inserted) == len(events):
        _after_written(writes, inserted[0][3:])
    return {(name, ext): pk for pk, name, ext, *_ in inserted}


UPDATABLE_EVENT_FIELDS = [*EVENT_VERSION_FIELDS, "updated_at"]


@transaction.atomic
def events_upsert(*, workspace_id: str, events: Sequence[EventInput]) -> list[EventUpsertResult]:
    """Upsert a batch of events (1 to 50 from the API) in one transaction.

    Costs a constant number of statements. On PostgreSQL, when every event is new (the common
    case), two: the contacts' (insert, lock, the events' advisory locks and their reserved
    ids), then the events' (insert, timeline entries, refresh queue and what the change
    recorders write, webhooks' outbox). When some existed: those are then locked, folded, and
    updated in one statement, and their timeline, the queue and the recorders' rows are one
    more statement. Elsewhere each of those writes is a statement of its own. Results are in
    input order.
    """
    now = timezone.now()
    by_key: dict[tuple[str, str], list[EventInput]] = {}
    for incoming in events:
        by_key.setdefault(incoming.key, []).append(incoming)
    keys = sorted(by_key)
    postgresql = connection.vendor == "postgresql"
    ensured = _contacts_ensure(
        workspace_id=workspace_id,
        emails=(e.email for e in events),
        now=now,
        lock_ids=_lock_ids(workspace_id, keys) if postgresql else (),
        event_ids=len(keys) if postgresql else 0,
    )
    contacts, created_contacts = ensured.contacts, ensured.created

    def fold(key: tuple[str, str], stored: CustomEvent | None) -> tuple[CustomEvent, list[_Step]]:
        # An event keeps the contact it was created for; the identity is the event's key.
        incomings = by_key[key]
        contact = stored.contact if stored is not None else contacts[incomings[0].email]
        return _fold(stored, incomings, workspace_id=workspace_id, contact=contact, now=now)

    def entries_and_changes(of: Iterable[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[EventChange]]:
        entries: list[dict[str, Any]] = []
        changes: list[EventChange] = []
        for key in of:
            event, steps = folded[key]
            effective = [step for step in steps if step.operation != Operation.UNCHANGED]
            entries += _event_entries(event, effective, now)
            changes += [_event_change(event, step) for step in effective]
        return entries, changes

    def changed_contacts(updated: Iterable[CustomEvent], inserted: Iterable[tuple[str, str]]) -> set[int]:
        return (
            {c.pk for c in created_contacts}
            | {e.contact.pk for e in updated}
            | {folded[k][0].contact_id for k in inserted}
        )

    # Insert first, as if every key were new (the common case costs no lookup); the keys that
    # already existed conflict, are locked and folded again against the stored row. The
    # advisory locks keep other writers of these keys out meanwhile; a row that vanishes
    # between the two (its contact erased) is inserted on the next round.
    folded = {key: fold(key, None) for key in keys}
    contact_entries = [_entry_row(_contact_created_entry(c, now)) for c in created_contacts]
    inserted_ids: dict[tuple[str, str], int] = {}
    written: list[tuple[str, str]] = []  # keys whose timeline entries are written already
    if ensured.event_ids:
        for key, pk in zip(keys, ensured.event_ids, strict=True):
            folded[key][0].pk = pk
        entries, changes = entries_and_changes(keys)

        # Every key is new here, so its first change is its creation: one change per key means
        # nothing but creations (no key twice in the batch), and the recorders may read the
        # events' rows from the statement instead of rendering ``changes``.
        only_creations = len(changes) == len(keys)

        def if_all_new(condition: str, rows: str) -> list[_Write]:
            changed = changed_contacts((), keys)
            return [
                *_queue_writes(workspace_id, changed, when=condition),
                *_activity_writes(workspace_id, folded.values(), when=condition),
                *_record_writes(
                    workspace_id,
                    now,
                    _Changes(created_contacts, events=changes),
                    when=condition,
                    quiet=ensured.quiet,
                    created_rows=rows if only_creations else None,
                ),
            ]

        inserted_ids = _insert_new_events(
            [folded[key][0] for key in keys], entries=contact_entries + entries, if_all_new=if_all_new
        )
        written = list(inserted_ids)
        contact_entries = []
        if len(inserted_ids) == len(keys):
            _changes_written(workspace_id, now, _Changes(created_contacts, events=changes))
            _changes_committed(workspace_id, changed_contacts((), keys))
            return _results(events, folded)
    stored: dict[tuple[str, str], CustomEvent] = {}
    pending = [key for key in keys if key not in inserted_ids]
    for _round in range(5):
        if _round or not ensured.event_ids:
            new_ids = _insert_events([folded[key][0] for key in pending])
            for key, pk in new_ids.items():
                folded[key][0].pk = pk
            inserted_ids.update(new_ids)
        existing = _lock_events(workspace_id, [key for key in pending if key not in inserted_ids])
        for key, event in existing.items():
            stored[key] = event
            folded[key] = fold(key, event)
        pending = [key for key in pending if key not in inserted_ids and key not in existing]
        if not pending:
            break
    else:
        raise WriteConflict(f"events {pending} neither inserted nor found after 5 rounds")
    inserted = [key for key in keys if key not in stored]

    to_update = [
        event
        for key, (event, steps) in folded.items()
        if key in stored and any(s.operation != Operation.UNCHANGED for s in steps)
    ]
    if to_update:
        CustomEvent.objects.bulk_update(to_update, UPDATABLE_EVENT_FIELDS)

    done = set(written)
    entries, _ = entries_and_changes(key for key in keys if key not in done)
    _, changes = entries_and_changes(keys)
    changed = changed_contacts(to_update, inserted)
    entries = contact_entries + entries
    _run_writes(
        [
            *([_Write(*_timeline_statement(entries))] if entries else []),
            *_queue_writes(workspace_id, changed),
            *_activity_writes(workspace_id, folded.values()),
            *_record_writes(workspace_id, now, _Changes(created_contacts, events=changes), quiet=ensured.quiet),
        ]
    )
    _changes_written(workspace_id, now, _Changes(created_contacts, events=changes))
    _changes_committed(workspace_id, changed)
    return _results(events, folded)


def _results(
    events: Sequence[EventInput], folded: dict[tuple[str, str], tuple[CustomEvent, list[_Step]]]
) -> list[EventUpsertResult]:
    """Each input's result, in input order."""
    by_input: dict[int, EventUpsertResult] = {}
    for event, steps in folded.values():
        for step in steps:
            by_input[id(step.incoming)] = EventUpsertResult(event=event, operation=step.operation)
    return [by_input[id(incoming)] for incoming in events]


def _queue_writes(workspace_id: str, contact_ids: Iterable[int], *, when: str = "") -> list[_Write]:
    statement = refresh.contacts_queue_refresh_statement(workspace_id=workspace_id, contact_ids=contact_ids, when=when)
    return [] if statement is None else [_Write(*statement)]


def _activity_writes(
    workspace_id: str, folded: Iterable[tuple[CustomEvent, list[_Step]]], *, when: str = ""
) -> list[_Write]:
    """The dashboard's deltas of these folded events (``activity.py``): every effective step's
    version before and after."""
    versions = (
        (step.before, step.after) for _, steps in folded for step in steps if step.operation != Operation.UNCHANGED
    )
    statement = activity.activity_statement(workspace_id=workspace_id, changes=activity.deltas(versions), when=when)
    return [] if statement is None else [_Write(*statement)]


def _event_change(event: CustomEvent, step: _Step) -> EventChange:
    values = {
        **step.after,
        "id": event.pk,
        "workspace_id": event.workspace_id,
        "contact_id": event.contact_id,
        "email": event.contact.email,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
    }
    return EventChange(operation=step.operation, values=values)


# ---------------------------------------------------------------------------------------
# Change recorders: what layers above contacts write together with each change
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordStatement:
    """What a change recorder writes with a change: one ``INSERT ... SELECT ... WHERE ...`` in
    the write's transaction, on PostgreSQL folded into one of the write's own statements (a
    data-modifying CTE: it costs no round trip), elsewhere a statement of its own.

    ``after_commit`` is called inside the write's transaction when the statement wrote rows (to
    register, through ``transaction.on_commit``, what follows once they are committed).
    """

    sql: str
    params: list[Any]
    after_commit: Callable[[], None]


ChangeRecorder = Callable[..., "RecordStatement | None"]
# A recorder's probe: workspace_id -> (an SQL boolean, its params): whether it may record
# anything in that workspace at all.
RecorderProbe = Callable[[str], tuple[str, list[Any]]]
_recorders: dict[str, ChangeRecorder] = {}
_probes: dict[str, RecorderProbe] = {}


def _probes_sql(workspace_id: str) -> tuple[list[str], str, list[Any]]:
    """The registered probes, as the select list the contacts' statement reads them in."""
    names: list[str] = []
    columns: list[str] = []
    params: list[Any] = []
    for name, probe in sorted(_probes.items()):
        sql, probe_params = probe(workspace_id)
        names.append(name)
        columns.append(f"({sql}) AS probe{len(columns)}")
        params += probe_params
    return names, ", ".join(columns) or "true AS probe0", params


def register_change_recorder(name: str, recorder: ChangeRecorder, *, probe: RecorderProbe | None = None) -> None:
    """Record every change contacts writes, from now on (registering a name again replaces it).

    Called as ``recorder(workspace_id=, now=, contacts_created=, contacts_updated=,
    contacts_erased=, events=, when=, created_rows=)`` (the arguments of
    ``signals.changes_written``, plus ``when``: "" or an SQL condition the statement must AND
    into its WHERE clause, so that a write can make it depend on the rest of its statement, and
    ``created_rows``: None, or, when every change in ``events`` is the creation of its event
    (one change per event), the name of a relation of the write's statement holding exactly
    those events' rows as stored (the event table's columns), which the recorder may read
    instead of rendering ``events`` itself); returns the ``RecordStatement``, or
    None when there is nothing to record. A recorder must be set-based (one statement whatever
    the batch) and must not read the database itself: it is called before the write's rows
    exist, with their ids already known.

    ``probe`` (optional) says in SQL whether the recorder may record anything in a workspace at
    all (webhooks: an enabled subscription exists). An ingest write reads it in its first
    statement, the contacts' (no round trip of its own), and when it is false does not call the
    recorder, whose statement would write nothing: no rows rendered in Python for nothing. So
    what a recorder sees is the workspace as of the write's first statement, not its last; a
    subscription committed between the two (within a millisecond) takes effect from the next
    write.
    """
    _recorders[name] = recorder
    if probe is None:
        _probes.pop(name, None)
    else:
        _probes[name] = probe


def unregister_change_recorder(name: str) -> None:
    _recorders.pop(name, None)
    _probes.pop(name, None)


@dataclass(frozen=True)
class _Changes:
    """What one write changed, as recorders and ``changes_written`` listeners are told."""

    contacts_created: Sequence[Contact] = ()
    contacts_updated: Sequence[Contact] = ()
    contacts_erased: Sequence[Contact] = ()
    events: Sequence[EventChange] = ()

    def __bool__(self) -> bool:
        return bool(self.contacts_created or self.contacts_updated or self.contacts_erased or self.events)

    def arguments(self) -> dict[str, list[Any]]:
        return {
            "contacts_created": list(self.contacts_created),
            "contacts_updated": list(self.contacts_updated),
            "contacts_erased": list(self.contacts_erased),
            "events": list(self.events),
        }


def _record_writes(
    workspace_id: str,
    now: datetime,
    changes: _Changes,
    *,
    when: str = "",
    quiet: frozenset[str] = frozenset(),
    created_rows: str | None = None,
) -> list[_Write]:
    """The recorders' writes for these changes (none when nothing changed), by recorder name;
    ``quiet`` ones (their probe read false in this write) are not called. ``created_rows``: see
    ``register_change_recorder``."""
    if not changes:
        return []
    writes = []
    for name, recorder in sorted(_recorders.items()):
        if name in quiet:
            continue
        statement = recorder(
            workspace_id=workspace_id, now=now, when=when, created_rows=created_rows, **changes.arguments()
        )
        if statement is not None:
            writes.append(_Write(statement.sql, statement.params, statement.after_commit))
    return writes


def _changes_written(workspace_id: str, now: datetime, changes: _Changes) -> None:
    """Inside the write's transaction, once its rows and the recorders' are written: tell the
    ``changes_written`` listeners what was written."""
    if changes:
        changes_written.send(sender=Contact, workspace_id=workspace_id, now=now, **changes.arguments())


def _announce_written(workspace_id: str, now: datetime, changes: _Changes) -> None:
    """Inside the write's transaction: the recorders' rows (one statement on PostgreSQL), then
    the ``changes_written`` listeners."""
    _run_writes(_record_writes(workspace_id, now, changes))
    _changes_written(workspace_id, now, changes)


def event_upsert(*, workspace_id: str, event: EventInput) -> EventUpsertResult:
    return events_upsert(workspace_id=workspace_id, events=[event])[0]


@transaction.atomic
def event_set_deleted(*, event: CustomEvent, deleted: bool) -> EventUpsertResult:
    """Soft delete or restore one stored event (admin actions), through the upsert rule."""
    incoming = EventInput(
        email=event.contact.email,
        event_name=event.event_name,
        external_id=event.external_id,
        occurred_at=event.occurred_at,
        properties=event.properties,
        source=event.source,
        integration_id=event.integration_id,
        deleted_at=timezone.now() if deleted else None,
    )
    return event_upsert(workspace_id=event.workspace_id, event=incoming)


def _changes_committed(workspace_id: str, contact_ids: Iterable[int]) -> None:
    """After the commit, and inside a request after the response is sent (the client need not
    wait for it), publish a drain of the refresh queue the write filled (``refresh.py``) and
    tell the listeners. Nothing is lost if this never runs: the contacts are queued already."""
    ids = sorted(contact_ids)
    if ids:
        transaction.on_commit(lambda: defer(lambda: _contacts_changed(workspace_id, ids)))


def _contacts_changed(workspace_id: str, ids: list[int]) -> None:
    refresh.drain_schedule(workspace_id=workspace_id)
    contacts_changed.send(sender=Contact, workspace_id=workspace_id, contact_ids=ids)


# ---------------------------------------------------------------------------------------
# Contacts API writes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactUpsertResult:
    contact: Contact
    operation: str


@dataclass(frozen=True)
class ContactInput:
    """One contact to write: its email and only the fields that were sent: columns, ``properties``
    (the free-form keys, replaced whole) and Notifuse's profile fields by name (None clears one;
    ``models.merged_properties``)."""

    email: str
    fields: dict[str, Any]


def contact_upsert(*, workspace_id: str, email: str, fields: dict[str, Any]) -> ContactUpsertResult:
    """Create or update a contact; only the fields sent are changed (``properties`` whole)."""
    return contacts_upsert(workspace_id=workspace_id, contacts=[ContactInput(email=email, fields=fields)])[0]


@transaction.atomic
def contacts_upsert(*, workspace_id: str, contacts: Sequence[ContactInput]) -> list[ContactUpsertResult]:
    """Create or update contacts in one transaction, in order, as if upserted one after the other
    (only the fields sent change); a constant number of statements however many there are.

    Each change writes its timeline entry (``contact.created`` / ``contact.updated``); an upsert
    that changes nothing writes nothing and is ``unchanged``.
    """
    now = timezone.now()
    emails = [normalize_email(item.email) for item in contacts]
    ensured = _contacts_ensure(workspace_id=workspace_id, emails=emails, now=now)
    created = ensured.created
    # NO KEY UPDATE: event writers' foreign-key checks (KEY SHARE) need not wait for us.
    locked = {
        c.email: c
        for c in Contact.objects.select_for_update(no_key=True)
        .filter(pk__in=[c.pk for c in ensured.contacts.values()])
        .order_by("pk")
    }
    new_emails = {c.email for c in created}
    results: list[ContactUpsertResult] = []
    entries: list[StoredTimelineEntry] = []
    changed: dict[int, Contact] = {}
    first_created: list[Contact] = []
    updated: dict[int, Contact] = {}
    for email, item in zip(emails, contacts, strict=True):
        contact = locked[email]
        before = contact_snapshot(contact)
        for name, value in item.fields.items():
            if name != "properties" and name not in PROFILE_FIELD_TYPES:
                setattr(contact, name, value)
        properties = merged_properties(contact.properties, item.fields)
        if properties is not None:
            contact.properties = properties
        after = contact_snapshot(contact)
        if email in new_emails:
            new_emails.discard(email)  # a later item for the same email updates it
            if item.fields:
                changed[contact.pk] = contact
            created_entry = _contact_created_entry(contact, now)
            created_entry.changes = diff(None, after)  # each profile field under its own name
            entries.append(created_entry)
            first_created.append(contact)
            operation = Operation.CREATED
        elif before != after:
            changed[contact.pk] = contact
            updated[contact.pk] = contact
            entries.append(
                StoredTimelineEntry(
                    workspace_id=workspace_id,
                    contact=contact,
                    kind="contact.updated",
                    operation=StoredTimelineEntry.Operation.UPDATE,
                    entity_type="contact",
                    entity_id=str(contact.pk),
                    changes=diff(before, after),
                    created_at=now,
                )
            )
            operation = Operation.UPDATED
        else:
            operation = Operation.UNCHANGED
        results.append(ContactUpsertResult(contact=contact, operation=operation))
    if changed:
        for contact in changed.values():
            contact.updated_at = now
        Contact.objects.bulk_update(list(changed.values()), [*TRACKED_CONTACT_FIELDS, "updated_at"])
    StoredTimelineEntry.objects.bulk_create(entries)
    _announce_written(workspace_id, now, _Changes(first_created, list(updated.values())))
    changed_ids = {r.contact.pk for r in results if r.operation != Operation.UNCHANGED}
    refresh.contacts_queue_refresh(workspace_id=workspace_id, contact_ids=changed_ids)
    _changes_committed(workspace_id, changed_ids)
    return results


@transaction.atomic
def contact_delete(*, workspace_id: str, email: str) -> bool:
    """Erase a contact with its events, timeline and segment memberships (cannot be undone).

    The contact is locked ``FOR UPDATE`` first: a write still holding it (``_contacts_ensure``'s
    lock, an event's foreign-key check) commits before the erasure collects the rows to delete,
    and a write arriving meanwhile waits for the erasure, then creates the contact anew.
    """
    contact = (
        Contact.objects.select_for_update(of=("self",))
        .filter(workspace_id=workspace_id, email=normalize_email(email))
        .first()
    )
    if contact is None:
        return False
    contact_id = contact.pk
    _announce_written(workspace_id, timezone.now(), _Changes(contacts_erased=[contact]))
    with connection.cursor() as cursor:
        cursor.execute(*activity.erasure_statement(contact_id=contact_id))
    contact.delete()
    refresh.contacts_queue_refresh(workspace_id=workspace_id, contact_ids=[contact_id])
    _changes_committed(workspace_id, [contact_id])
    return True
