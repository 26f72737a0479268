"""Writes for segments: create/update/delete, full builds and per-contact refreshes.

Membership is changed only by ``_apply_membership``, set-based and in one transaction: exits
(history, ``segment.left`` timeline entries, delete) and entries (history, ``segment.joined``
entries, insert) against the matching contact ids, in one statement of data-modifying CTEs on
PostgreSQL, through temporary tables on SQLite. Readers never see a half-built set: they see
the old membership until the commit.

Business rules (unknown or cyclic references, a taken id, a segment still in use) raise
``SegmentError``, a ``ValidationError`` naming the request field.

Contacts changed by ingest reach segments through the contacts refresh queue's drain hook
(``receivers.py``), which calls ``segments_refresh_contacts``.

Builds hold a lease (``build_token`` + ``build_lease_expires_at``) and, on PostgreSQL, a
session lock that dies with their worker (``events_platform/liveness.py``). A build asked for
(status ``building``, no token: "queued") records until when its publish should have been
taken (``BUILD_QUEUED_GRACE``); the recovery sweep (``segment_builds_to_resume``, every
``REFRESH_SWEEP_INTERVAL`` seconds) publishes again a queued build past that time (its
publish failed, or its message was lost with the broker) and a running build whose worker died
(its session lock is free) or whose lease expired (a stuck worker). A tree change bumps
``version`` and clears the lease, so a newer build supersedes an older one still running; the
older one finds the version moved on when it applies and gives up.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from contacts.models import Contact, StoredTimelineEntry
from events_platform import conflicts, liveness, time_limits
from events_platform.celery import PUBLISH_ERRORS
from rfm import selectors as rfm_selectors

from . import rules
from .models import DEFAULT_COLOR, Segment, SegmentMembership, SegmentMembershipChange
from .selectors import segment_matching_contacts, segment_pks_for_slugs

logger = logging.getLogger(__name__)

BUILD_LEASE = timedelta(minutes=10)
# A build asked for should be taken by a worker within this; past it the sweep publishes it again.
BUILD_QUEUED_GRACE = timedelta(seconds=15)


class SegmentError(ValidationError):
    """A segment business rule refused the write, at ``field`` of the request (``id``, ``tree``).

    A ``ValidationError`` like any other: the API's exception bridge answers it as the standard
    400 naming the field; pages catch it by name to show it next to the right control.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__({field: [message]})
        self.field = field


# ---------------------------------------------------------------------------------------
# Create / update / delete
# ---------------------------------------------------------------------------------------


def _check_references(*, workspace_id: str, slug: str, tree: dict[str, Any]) -> None:
    """Referenced segments and RFM models must exist in the workspace, and no chain may lead back to us."""
    models = rules.referenced_rfm_models(tree)
    if models:
        known_models = set(rfm_selectors.rfm_model_list(workspace_id=workspace_id).values_list("slug", flat=True))
        unknown = sorted(models - known_models)
        if unknown:
            raise SegmentError("tree", f"Unknown RFM model(s) referenced: {', '.join(unknown)}.")
    referenced = rules.referenced_segments(tree)
    if not referenced:
        return
    known = dict(Segment.objects.live().filter(workspace_id=workspace_id).values_list("slug", "tree"))
    missing = sorted(referenced - set(known))
    if missing:
        raise SegmentError("tree", f"Unknown segment(s) referenced: {', '.join(missing)}.")
    # Depth-first walk of the reference graph from our own references.
    stack, seen = list(referenced), set()
    while stack:
        current = stack.pop()
        if current == slug:
            raise SegmentError("tree", f"Segment '{slug}' would depend on itself through '{current}'.")
        if current in seen:
            continue
        seen.add(current)
        stack.extend(rules.referenced_segments(known.get(current) or {}))


@transaction.atomic
def segment_create(
    *,
    workspace_id: str,
    slug: str,
    name: str,
    tree: dict[str, Any],
    color: str = DEFAULT_COLOR,
    timezone_name: str = "UTC",
) -> Segment:
    tree = rules.validate_tree(tree)
    if Segment.objects.live().filter(workspace_id=workspace_id, slug=slug).exists():
        raise SegmentError("id", f"A segment with id '{slug}' already exists in this workspace.")
    _check_references(workspace_id=workspace_id, slug=slug, tree=tree)
    # A deleted segment's slug may be reused: the old row is replaced.
    Segment.objects.filter(workspace_id=workspace_id, slug=slug, status=Segment.Status.DELETED).delete()
    segment = Segment(
        workspace_id=workspace_id,
        slug=slug,
        name=name,
        color=color,
        timezone=timezone_name,
        tree=tree,
        status=Segment.Status.BUILDING,
        build_lease_expires_at=timezone.now() + BUILD_QUEUED_GRACE,
        has_relative_timeframe=rules.has_relative_timeframe(tree),
    )
    # The unique (workspace, slug) constraint is left to the database, which also sees
    # concurrent creates; a read-side check here would race them.
    segment.full_clean(validate_constraints=False)
    conflicts.insert_unique(
        segment, taken=SegmentError("id", f"A segment with id '{slug}' already exists in this workspace.")
    )
    _enqueue_build(segment)
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    name: str | None = None,
    color: str | None = None,
    tree: dict[str, Any] | None = None,
    timezone_name: str | None = None,
) -> Segment:
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    rebuild = False
    if name is not None:
        segment.name = name
    if color is not None:
        segment.color = color
    if timezone_name is not None and timezone_name != segment.timezone:
        segment.timezone = timezone_name
        rebuild = True
    if tree is not None:
        tree = rules.validate_tree(tree)
        if tree != segment.tree:
            _check_references(workspace_id=segment.workspace_id, slug=segment.slug, tree=tree)
            segment.tree = tree
            segment.has_relative_timeframe = rules.has_relative_timeframe(tree)
            rebuild = True
    if rebuild:
        segment.version += 1
        segment.status = Segment.Status.BUILDING
        segment.build_token = ""
        segment.build_lease_expires_at = timezone.now() + BUILD_QUEUED_GRACE
    segment.full_clean()
    segment.save()
    if rebuild:
        _enqueue_build(segment)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    """Mark deleted; its members leave it (recorded like any exit; history is kept)."""
    dependants = [
        s.slug
        for s in Segment.objects.live().filter(workspace_id=segment.workspace_id)
        if segment.slug in rules.referenced_segments(s.tree)
    ]
    if dependants:
        raise SegmentError("id", f"Used by other segments: {', '.join(sorted(dependants))}.")
    Segment.objects.filter(pk=segment.pk).update(
        status=Segment.Status.DELETED,
        member_count=0,
        build_token="",
        build_lease_expires_at=None,
        version=segment.version + 1,
    )
    # Every member leaves, as in any diff: history, a segment.left timeline entry and (through
    # the membership hooks) webhook outbox rows, in this transaction. ``pk IS NULL`` matches no one.
    _apply_membership(segment=segment, matching=Contact.objects.filter(pk__isnull=True), now=timezone.now())


@transaction.atomic
def segment_rebuild(*, segment: Segment) -> Segment:
    """Ask for a full build now (any build in flight for an older request is superseded)."""
    Segment.objects.filter(pk=segment.pk).update(
        version=segment.version + 1,
        status=Segment.Status.BUILDING,
        build_token="",
        build_lease_expires_at=timezone.now() + BUILD_QUEUED_GRACE,
    )
    segment.refresh_from_db()
    _enqueue_build(segment)
    return segment


def segments_from_templates_create(*, workspace_id: str) -> list[Segment]:
    """A segment from each built-in template (slug = the template's key), built before returning,
    for a workspace that has no segment yet (the demo's first run); otherwise nothing."""
    if Segment.objects.live().filter(workspace_id=workspace_id).exists():
        return []
    created = []
    for key, template in rules.TEMPLATES.items():
        segment = segment_create(
            workspace_id=workspace_id, slug=key, name=template["name"], tree=template["tree"], color=template["color"]
        )
        segment.refresh_from_db()
        if segment.status != Segment.Status.ACTIVE:  # a worker would build it later: build it now
            segment_build(segment_pk=segment.pk, version=segment.version)
            segment.refresh_from_db()
        created.append(segment)
    return created


def _enqueue_build(segment: Segment) -> None:
    """After the commit, publish the build. The segment is recorded as queued already, so a
    publish that fails (broker down) fails nothing: the write succeeded, its page and API answer
    say the build is queued, and the sweep publishes it once the broker is back."""
    pk, version = segment.pk, segment.version
    transaction.on_commit(lambda: _publish_build(pk, version))


def _publish_build(segment_pk: int, version: int) -> bool:
    from .tasks import segment_build_task

    try:
        segment_build_task.delay(segment_pk, version)
    except PUBLISH_ERRORS:
        logger.warning("build of segment %s not published (broker unreachable); the sweep will", segment_pk)
        return False
    return True


# ---------------------------------------------------------------------------------------
# Membership diff
# ---------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


# Upper layers (webhooks' outbox) record membership changes in the diff's own statement, so
# they commit with it and stay set-based. A hook gets the segment, the diff's time and
# ``source``, a SQL relation of the changed rows ``(contact_id, kind)`` with kind
# ``segment.joined`` / ``segment.left``, and returns an object with ``sql`` (one
# ``INSERT ... SELECT ... FROM {source}``), ``params`` and ``after_commit`` (run after the
# commit when the diff changed anything). Registered once per process at startup (AppConfig.ready).
MembershipChangeHook = Callable[..., Any]
_membership_change_hooks: list[MembershipChangeHook] = []


def register_membership_change_hook(hook: MembershipChangeHook) -> None:
    if hook not in _membership_change_hooks:
        _membership_change_hooks.append(hook)


def _membership_change_statements(segment: Segment, now: datetime, source: str) -> list[Any]:
    return [hook(segment=segment, now=now, source=source) for hook in _membership_change_hooks]


def _after_membership_changed(statements: list[Any], changed: int) -> None:
    if changed:
        for statement in statements:
            transaction.on_commit(statement.after_commit)


def _json_param(value: Any) -> Any:
    return StoredTimelineEntry._meta.get_field("changes").get_db_prep_save(value, connection)


def _dt_param(value: datetime) -> Any:
    return StoredTimelineEntry._meta.get_field("created_at").get_db_prep_save(value, connection)


def _apply_membership(
    *, segment: Segment, matching: QuerySet[Contact], now: datetime, scope: Sequence[int] | None = None
) -> tuple[int, int]:
    """Make the stored membership equal ``matching`` (within ``scope`` contact ids if given).

    Must run inside a transaction. Returns (entered, exited).
    """
    if connection.vendor == "postgresql":
        return _apply_membership_in_one_statement(segment=segment, matching=matching, now=now, scope=scope)
    return _apply_membership_with_temporary_tables(segment=segment, matching=matching, now=now, scope=scope)


def _apply_membership_with_temporary_tables(
    *, segment: Segment, matching: QuerySet[Contact], now: datetime, scope: Sequence[int] | None = None
) -> tuple[int, int]:
    """``_apply_membership`` on SQLite (no data-modifying CTEs): the matching ids and both
    differences go into temporary tables, read three times each (history, timeline entries,
    membership) without re-running the anti-joins."""
    table = f"seg_new_{uuid.uuid4().hex[:12]}"
    membership = _q(SegmentMembership._meta.db_table)
    history = _q(SegmentMembershipChange._meta.db_table)
    timeline = _q(StoredTimelineEntry._meta.db_table)
    select_sql, select_params = matching.order_by().values("id").query.sql_with_params()
    scope_sql, scope_params = "", []
    if scope is not None:
        scope_sql = f" AND m.contact_id IN ({', '.join(['%s'] * len(scope))})"
        scope_params = list(scope)

    def timeline_insert(kind: str, source: str, params: list[Any]) -> tuple[str, list[Any]]:
        changes = {"segment": {"new": {"id": segment.slug, "name": segment.name}}}
        sql = (
            f"INSERT INTO {timeline} (workspace_id, contact_id, kind, operation, entity_type, entity_id, "
            f"custom_event_id, changes, created_at, db_created_at) "
            f"SELECT %s, x.contact_id, %s, %s, 'segment', %s, NULL, %s, %s, %s FROM ({source}) x"
        )
        head = [segment.workspace_id, kind, StoredTimelineEntry.Operation.INSERT, segment.slug, _json_param(changes)]
        return sql, [*head, _dt_param(now), _dt_param(now), *params]

    exited_source = (
        f"SELECT m.contact_id FROM {membership} m WHERE m.segment_id = %s{scope_sql} "
        f"AND NOT EXISTS (SELECT 1 FROM {table} n WHERE n.id = m.contact_id)"
    )
    exited_params = [segment.pk, *scope_params]
    entered_source = (
        f"SELECT n.id AS contact_id FROM {table} n WHERE NOT EXISTS "
        f"(SELECT 1 FROM {membership} m WHERE m.segment_id = %s AND m.contact_id = n.id)"
    )
    entered_params = [segment.pk]

    exited_table, entered_table = f"{table}_ex", f"{table}_en"
    with connection.cursor() as cursor:
        for name in (table, exited_table, entered_table):
            cursor.execute(
                f"CREATE TEMPORARY TABLE {name} ({'id' if name == table else 'contact_id'} bigint PRIMARY KEY)"
            )
        try:
            cursor.execute(f"INSERT INTO {table} (id) {select_sql}", select_params)
            cursor.execute(f"INSERT INTO {exited_table} (contact_id) {exited_source}", exited_params)
            exited = cursor.rowcount
            cursor.execute(f"INSERT INTO {entered_table} (contact_id) {entered_source}", entered_params)
            entered = cursor.rowcount
            if exited or entered:
                changed = (
                    f"(SELECT contact_id, 'segment.left' AS kind FROM {exited_table} "
                    f"UNION ALL SELECT contact_id, 'segment.joined' AS kind FROM {entered_table})"
                )
                statements = _membership_change_statements(segment, now, changed)
                for statement in statements:
                    cursor.execute(statement.sql, statement.params)
                _after_membership_changed(statements, exited + entered)
            for count, diff, change, kind in (
                (exited, exited_table, SegmentMembershipChange.Change.EXITED, "segment.left"),
                (entered, entered_table, SegmentMembershipChange.Change.ENTERED, "segment.joined"),
            ):
                if not count:
                    continue
                source = f"SELECT contact_id FROM {diff}"
                cursor.execute(
                    f"INSERT INTO {history} (segment_id, contact_id, change, changed_at) "
                    f"SELECT %s, x.contact_id, %s, %s FROM ({source}) x",
                    [segment.pk, change, _dt_param(now)],
                )
                cursor.execute(*timeline_insert(kind, source, []))
            if exited:
                cursor.execute(
                    f"DELETE FROM {membership} WHERE segment_id = %s "
                    f"AND contact_id IN (SELECT contact_id FROM {exited_table})",
                    [segment.pk],
                )
            if entered:
                cursor.execute(
                    f"INSERT INTO {membership} (segment_id, contact_id, entered_at) "
                    f"SELECT %s, contact_id, %s FROM {entered_table}",
                    [segment.pk, _dt_param(now)],
                )
        finally:
            for name in (table, exited_table, entered_table):
                cursor.execute(f"DROP TABLE IF EXISTS {name}")  # SQLite rolls an interrupted transaction back whole
    return entered, exited


def _apply_membership_in_one_statement(
    *, segment: Segment, matching: QuerySet[Contact], now: datetime, scope: Sequence[int] | None = None
) -> tuple[int, int]:
    """``_apply_membership`` on PostgreSQL: the matching ids, both differences, history, timeline
    entries and the membership change in ONE statement of data-modifying CTEs, without
    temporary tables. All parts see the same snapshot: exits and entries are disjoint, so the
    entries' anti-join may read the membership from before the exits' delete."""
    membership = _q(SegmentMembership._meta.db_table)
    history = _q(SegmentMembershipChange._meta.db_table)
    timeline = _q(StoredTimelineEntry._meta.db_table)
    select_sql, select_params = matching.order_by().values("id").query.sql_with_params()
    scope_sql = " AND m.contact_id = ANY(%s)" if scope is not None else ""
    scope_params = [list(scope)] if scope is not None else []
    changes = _json_param({"segment": {"new": {"id": segment.slug, "name": segment.name}}})
    at = _dt_param(now)
    statements = _membership_change_statements(segment, now, "changes")
    hooks_sql = "".join(f", hook_{i} AS ({statement.sql})" for i, statement in enumerate(statements))
    sql = (
        f"WITH new AS MATERIALIZED ({select_sql}), "
        f"exited AS (DELETE FROM {membership} m WHERE m.segment_id = %s{scope_sql} "
        "AND NOT EXISTS (SELECT 1 FROM new n WHERE n.id = m.contact_id) RETURNING m.contact_id), "
        f"entered AS (INSERT INTO {membership} (segment_id, contact_id, entered_at) "
        "SELECT %s, n.id, %s FROM new n WHERE NOT EXISTS "
        f"(SELECT 1 FROM {membership} m WHERE m.segment_id = %s AND m.contact_id = n.id) RETURNING contact_id), "
        "changes AS (SELECT contact_id, %s AS change, %s AS kind FROM exited "
        "UNION ALL SELECT contact_id, %s, %s FROM entered), "
        f"history AS (INSERT INTO {history} (segment_id, contact_id, change, changed_at) "
        "SELECT %s, contact_id, change, %s FROM changes), "
        f"entries AS (INSERT INTO {timeline} (workspace_id, contact_id, kind, operation, entity_type, entity_id, "
        "custom_event_id, changes, created_at, db_created_at) "
        "SELECT %s, contact_id, kind, %s, 'segment', %s, NULL, CAST(%s AS jsonb), %s, %s FROM changes)"
        f"{hooks_sql} SELECT (SELECT count(*) FROM entered), (SELECT count(*) FROM exited)"
    )
    params = [
        *select_params,
        segment.pk,
        *scope_params,
        segment.pk,
        at,
        segment.pk,
        SegmentMembershipChange.Change.EXITED,
        "segment.left",
        SegmentMembershipChange.Change.ENTERED,
        "segment.joined",
        segment.pk,
        at,
        segment.workspace_id,
        StoredTimelineEntry.Operation.INSERT,
        segment.slug,
        changes,
        at,
        at,
        *(param for statement in statements for param in statement.params),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        entered, exited = cursor.fetchone()
    _after_membership_changed(statements, int(entered) + int(exited))
    return int(entered), int(exited)


# ---------------------------------------------------------------------------------------
# Builds
# ---------------------------------------------------------------------------------------


def _lease(segment_pk: int, version: int, now: datetime) -> str | None:
    """Take the build lease for this version, or None if superseded or another build holds it."""
    token = uuid.uuid4().hex
    taken = (
        Segment.objects.live()
        .filter(pk=segment_pk, version=version)
        .filter(Q(build_token="") | Q(build_lease_expires_at__lt=now) | Q(build_lease_expires_at__isnull=True))
        .update(build_token=token, build_lease_expires_at=now + BUILD_LEASE, status=Segment.Status.BUILDING)
    )
    return token if taken else None


def _build_lock(segment_pk: int) -> str:
    return f"segment-build:{segment_pk}"


def segment_build(*, segment_pk: int, version: int, now: datetime | None = None) -> bool:
    """Full build of one segment version.

    Returns False when superseded, already running elsewhere, or failed (the failure is
    recorded on the segment: status ``failed`` and ``last_error``).
    """
    # Taken before the lease and let go after it is cleared: a lease whose lock is free is a
    # dead worker's (segment_builds_to_resume).
    with liveness.holding(_build_lock(segment_pk)) as alone:
        if not alone:
            return False  # a live build of this segment still runs (an older version's)
        return _segment_build(segment_pk=segment_pk, version=version, now=now)


def _segment_build(*, segment_pk: int, version: int, now: datetime | None) -> bool:
    started = time.monotonic()
    now = now or timezone.now()
    token = _lease(segment_pk, version, now)
    if token is None:
        return False
    try:
        with transaction.atomic():
            segment = (
                Segment.objects.select_for_update().filter(pk=segment_pk, version=version, build_token=token).first()
            )
            if segment is None:
                return False
            matching = segment_matching_contacts(
                workspace_id=segment.workspace_id,
                tree=segment.tree,
                timezone_name=segment.timezone,
                now=now,
            )
            entered, exited = _apply_membership(segment=segment, matching=matching, now=now)
            count = SegmentMembership.objects.filter(segment_id=segment.pk).count()
            Segment.objects.filter(pk=segment.pk).update(
                status=Segment.Status.ACTIVE,
                member_count=count,
                last_built_at=now,
                last_build_duration_ms=int((time.monotonic() - started) * 1000),
                last_error="",
                build_token="",
                build_lease_expires_at=None,
            )
    except Exception as exc:
        logger.exception("segment build failed: segment=%s version=%s", segment_pk, version)
        Segment.objects.filter(pk=segment_pk, version=version, build_token=token).update(
            status=Segment.Status.FAILED,
            last_error=time_limits.describe_failure(exc)[:2000],
            build_token="",
            build_lease_expires_at=None,
            last_build_duration_ms=int((time.monotonic() - started) * 1000),
        )
        return False
    logger.info("segment %s built: +%s -%s = %s", segment_pk, entered, exited, count)
    _rebuild_dependants(segment)
    return True


def segments_rebuild_for_rfm_model(*, workspace_id: str, model_slug: str) -> int:
    """Rebuild the live segments whose tree reads this RFM model's scores (after its full run
    rescored everyone). Returns how many were asked to rebuild."""
    using = [
        segment
        for segment in Segment.objects.live().filter(workspace_id=workspace_id)
        if model_slug in rules.referenced_rfm_models(segment.tree)
    ]
    for segment in using:
        segment_rebuild(segment=segment)
    return len(using)


def _rebuild_dependants(segment: Segment) -> None:
    for other in Segment.objects.filter(workspace_id=segment.workspace_id, status=Segment.Status.ACTIVE):
        if segment.slug in rules.referenced_segments(other.tree):
            segment_rebuild(segment=other)


def segments_refresh_contacts(*, workspace_id: str, contact_ids: Iterable[int], now: datetime | None = None) -> int:
    """Re-evaluate these contacts against every live segment of the workspace.

    One statement per segment evaluates all the given contacts at once. Segments are taken in
    dependency order so a segment that uses another sees that one's fresh membership.
    Returns the number of membership changes.
    """
    now = now or timezone.now()
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    changes = 0
    with transaction.atomic():
        # Contacts erased meanwhile simply drop out of the scope (their rows cascade away).
        segments = list(
            Segment.objects.select_for_update()
            .filter(workspace_id=workspace_id, status__in=[Segment.Status.ACTIVE, Segment.Status.BUILDING])
            .order_by("pk")
        )
        pks = segment_pks_for_slugs(
            workspace_id=workspace_id, slugs=set().union(*(rules.referenced_segments(s.tree) for s in segments))
        )
        # An erased contact's memberships went with it (cascade), unseen by the diff below,
        # so where one is in scope the counts are recounted rather than adjusted.
        erased = bool(set(ids) - set(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True)))
        for segment in _dependency_order(segments):
            matching = segment_matching_contacts(
                workspace_id=workspace_id,
                tree=segment.tree,
                timezone_name=segment.timezone,
                now=now,
                contact_ids=ids,
                segment_pks=pks,
            )
            entered, exited = _apply_membership(segment=segment, matching=matching, now=now, scope=ids)
            changes += entered + exited
            # Exact: the segment row is locked, so no other writer moves the count meanwhile.
            if erased:
                count = SegmentMembership.objects.filter(segment_id=segment.pk).count()
                Segment.objects.filter(pk=segment.pk).update(member_count=count)
            elif entered or exited:
                Segment.objects.filter(pk=segment.pk).update(member_count=F("member_count") + entered - exited)
    return changes


def _dependency_order(segments: list[Segment]) -> list[Segment]:
    by_slug = {s.slug: s for s in segments}
    ordered: list[Segment] = []
    placed: set[str] = set()

    def place(segment: Segment, trail: frozenset[str]) -> None:
        if segment.slug in placed or segment.slug in trail:
            return
        for ref in sorted(rules.referenced_segments(segment.tree)):
            if ref in by_slug:
                place(by_slug[ref], trail | {segment.slug})
        placed.add(segment.slug)
        ordered.append(segment)

    for segment in segments:
        place(segment, frozenset())
    return ordered


def segment_builds_to_resume(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """The recovery sweep: builds to publish again, as (pk, version), marked queued anew.

    A queued build past ``BUILD_QUEUED_GRACE`` (its publish failed or its message was lost) and
    a running one whose worker died (its session lock is free, PostgreSQL) or whose lease
    expired. Each is given a fresh grace, so a build still waiting behind others in the broker
    is published again at most once per grace. Cheap: an indexed read of building segments.
    """
    now = now or timezone.now()
    overdue = Q(build_lease_expires_at__isnull=True) | Q(build_lease_expires_at__lt=now)
    abandoned = Q(build_token="") & overdue | ~Q(build_token="") & Q(build_lease_expires_at__lt=now)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Segment._meta.db_table)
        holder_gone = RawSQL(  # noqa: S611 (fixed SQL: a quoted table name, no input)
            liveness.sql_free(f"'segment-build:' || {table}.id"), [], output_field=BooleanField()
        )
        abandoned |= ~Q(build_token="") & Q(holder_gone)
    with transaction.atomic():
        # SKIP LOCKED: a segment row a live build holds is that build's, not ours to judge.
        resumed = list(
            Segment.objects.select_for_update(skip_locked=True)
            .filter(abandoned, status=Segment.Status.BUILDING)
            .order_by("pk")
            .values_list("pk", "version")
        )
        if resumed:
            Segment.objects.filter(pk__in=[pk for pk, _ in resumed]).update(
                build_token="", build_lease_expires_at=now + BUILD_QUEUED_GRACE
            )
    return resumed


def segments_due_for_refresh(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """Segments whose membership can change with time alone, plus builds whose lease expired."""
    now = now or timezone.now()
    rolling = Q(status=Segment.Status.ACTIVE, has_relative_timeframe=True)
    stalled = Q(status=Segment.Status.BUILDING) & (Q(build_lease_expires_at__lt=now) | Q(build_token=""))
    return list(Segment.objects.filter(rolling | stalled).order_by("pk").values_list("pk", "version"))
