"""Writes for RFM: models (create / update / delete / recompute), full runs and the re-score of
contacts after their events changed.

Scores change only through ``_apply_scores``: the scoring SELECT of ``scoring.py`` diffed
against the stored ``RfmScore`` rows, with the group changes written to the change log and as
``rfm.group_changed`` timeline entries (plus what upper layers' hooks add, e.g. webhooks'
outbox), in ONE statement of data-modifying CTEs on PostgreSQL and through temporary tables on
SQLite, inside the caller's transaction. The model row is locked (``SELECT ... FOR UPDATE``) by
whoever scores, so a full run and a drain's re-score never interleave.

Business rules raise ``RfmError``, a ``ValidationError`` naming the request path, answered as a
400 by the API's exception bridge.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from contacts.models import StoredTimelineEntry
from events_platform import conflicts, tallies, time_limits

from . import config as rfm_config
from . import groups, scoring
from .models import RfmGroupChange, RfmGroupTally, RfmModel, RfmRun, RfmScore
from .scoring import ModelSpec, q

logger = logging.getLogger(__name__)

GROUP_CHANGED_KIND = "rfm.group_changed"
DAILY_RUN_AT = dt.time(0, 5)  # local time of a model's daily full run

# Sent after the commit of a full run (``model``: the RfmModel): upper layers (segments using
# the rfm leaf) rebuild what depends on every contact's scores.
model_computed = Signal()


class RfmError(ValidationError):
    """An RFM business rule refused the write, at ``field`` of the request (``id``, ``recency.cuts[1]``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__({field: [message]})
        self.field = field


# ---------------------------------------------------------------------------------------
# Group-change hooks (how upper layers record changes in the scoring statement itself)
# ---------------------------------------------------------------------------------------

# A hook gets ``model``, ``now`` and ``source``, a SQL relation of the changed rows
# ``(contact_id, from_group, to_group, r, f, m)`` (the new scores, NULL when unscored), and
# returns an object with ``sql`` (one ``INSERT ... SELECT ... FROM {source}``), ``params`` and
# ``after_commit`` (run after the commit when anything changed), exactly like segments'
# membership-change hooks. Registered at startup.
GroupChangeHook = Callable[..., Any]
_group_change_hooks: list[GroupChangeHook] = []


def register_group_change_hook(hook: GroupChangeHook) -> None:
    if hook not in _group_change_hooks:
        _group_change_hooks.append(hook)


def _hook_statements(model: RfmModel, now: dt.datetime, source: str) -> list[Any]:
    return [hook(model=model, now=now, source=source) for hook in _group_change_hooks]


def _after_changes(statements: list[Any], changed: int) -> None:
    if changed:
        for statement in statements:
            transaction.on_commit(statement.after_commit)


# ---------------------------------------------------------------------------------------
# Create / update / delete / recompute
# ---------------------------------------------------------------------------------------


def next_daily_run(*, timezone_name: str, now: dt.datetime) -> dt.datetime:
    """The next 00:05 in the model's timezone strictly after ``now``."""
    tz = zoneinfo.ZoneInfo(timezone_name)
    local = now.astimezone(tz)
    candidate = dt.datetime.combine(local.date(), DAILY_RUN_AT, tzinfo=tz)
    if candidate <= local:
        candidate = dt.datetime.combine(local.date() + dt.timedelta(days=1), DAILY_RUN_AT, tzinfo=tz)
    return candidate.astimezone(dt.UTC)


def _apply_config(model: RfmModel, canonical: dict[str, Any]) -> None:
    for key, value in canonical.items():
        setattr(model, key, value)


@transaction.atomic
def rfm_model_create(
    *,
    workspace_id: str,
    slug: str,
    name: str,
    timezone_name: str | None = None,
    settings: dict[str, Any] | None = None,
) -> RfmModel:
    """Create a model (``settings``: its config keys and/or ``preset``) and queue its first run."""
    from events_platform.workspaces.models import Workspace

    canonical = rfm_config.validate_config(settings or {})
    if timezone_name is None:
        timezone_name = Workspace.objects.filter(pk=workspace_id).values_list("timezone", flat=True).first() or "UTC"
    rfm_config.validate_timezone_name(timezone_name)
    model = RfmModel(workspace_id=workspace_id, slug=slug, name=name, timezone=timezone_name)
    _apply_config(model, canonical)
    model.next_run_at = next_daily_run(timezone_name=timezone_name, now=timezone.now())
    try:
        model.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise RfmError(*_first_error(exc, {"slug": "id"})) from exc
    conflicts.insert_unique(
        model, taken=RfmError("id", f"An RFM model with id '{slug}' already exists in this workspace.")
    )
    _enqueue_run(model)
    return model


def _first_error(exc: ValidationError, renames: dict[str, str]) -> tuple[str, str]:
    for key, messages in exc.message_dict.items():
        return renames.get(key, key), messages[0]
    return "non_field_errors", str(exc)


@transaction.atomic
def rfm_model_update(
    *,
    model: RfmModel,
    name: str | None = None,
    timezone_name: str | None = None,
    settings: dict[str, Any] | None = None,
) -> RfmModel:
    """Change a model; a change of what is scored (config, timezone) bumps ``version`` and
    queues a full run, which supersedes any run in flight for the older version."""
    model = RfmModel.objects.select_for_update().get(pk=model.pk)
    recompute = False
    if name is not None:
        model.name = name
    if timezone_name is not None and timezone_name != model.timezone:
        model.timezone = rfm_config.validate_timezone_name(timezone_name)
        model.next_run_at = next_daily_run(timezone_name=timezone_name, now=timezone.now())
        recompute = True
    if settings:
        canonical = rfm_config.validate_config(settings, base=model.config)
        if canonical != model.config:
            _apply_config(model, canonical)
            recompute = True
    model.full_clean(validate_constraints=False)
    model.save()
    return rfm_model_recompute(model=model) if recompute else model


@transaction.atomic
def rfm_model_delete(*, model: RfmModel) -> None:
    """Mark deleted and drop its scores (runs and the change log stay for the record)."""
    RfmModel.objects.filter(pk=model.pk).update(status=RfmModel.Status.DELETED, version=model.version + 1)
    RfmScore.objects.filter(model_id=model.pk).delete()


@transaction.atomic
def rfm_model_recompute(*, model: RfmModel) -> RfmModel:
    """Ask for a full run now (a run in flight for an older request is superseded)."""
    RfmModel.objects.filter(pk=model.pk).update(version=model.version + 1, status=RfmModel.Status.COMPUTING)
    model.refresh_from_db()
    _enqueue_run(model)
    return model


def _enqueue_run(model: RfmModel) -> None:
    from .tasks import rfm_model_compute_task

    rfm_model_compute_task.delay_on_commit(model.pk, model.version)


# ---------------------------------------------------------------------------------------
# The diff: scoring SELECT -> stored scores, change log, timeline, hooks
# ---------------------------------------------------------------------------------------

_SCORE_VALUES = ("recency_days", "frequency", "monetary_cents", "r", "f", "m")


def _json_param(value: Any) -> Any:
    return StoredTimelineEntry._meta.get_field("changes").get_db_prep_save(value, connection)


def _distinct(left: str, right: str) -> str:
    return f"{left} IS DISTINCT FROM {right}" if connection.vendor == "postgresql" else f"{left} IS NOT {right}"


def _timeline_changes_json(from_sql: str, to_sql: str) -> str:
    if connection.vendor == "postgresql":
        return (
            "jsonb_build_object('rfm_model', jsonb_build_object('id', CAST(%s AS text), 'name', CAST(%s AS text)), "
            f"'group', jsonb_build_object('old', {from_sql}, 'new', {to_sql}))"
        )
    return (
        "json_object('rfm_model', json_object('id', %s, 'name', %s), "
        f"'group', json_object('old', {from_sql}, 'new', {to_sql}))"
    )


@dataclass
class _Diff:
    model: RfmModel
    now: dt.datetime
    run: RfmRun | None
    statements: list[Any] = field(default_factory=list)

    def recorded_before(self) -> tuple[str, list[Any]]:
        """A condition true unless this is the model's first full run (which records no
        transitions): a re-score always follows a run; a full run asks for another run than its
        own, in the statement itself."""
        if self.run is None:
            return "1 = 1", []
        runs = q(RfmRun._meta.db_table)
        return f"EXISTS (SELECT 1 FROM {runs} WHERE model_id = %s AND id <> %s)", [self.model.pk, self.run.pk]

    def upsert_sql(self, new: str) -> tuple[str, list[Any]]:
        """Make the stored rows equal ``new``. A row inserted is a contact without a row yet:
        implicitly prospect, so (after the first run) a change from prospect when its group is
        another, exactly as ``changes_select`` counts it; a row updated keeps or moves its
        previous group by comparing the stored group with the new one."""
        scores = q(RfmScore._meta.db_table)
        group = q("group")
        at = scoring.dt_param(self.now)
        changed = _distinct(f"s.{group}", f"excluded.{group}")
        values_changed = " OR ".join(_distinct(f"s.{c}", f"excluded.{c}") for c in (*_SCORE_VALUES, group))
        before, before_params = self.recorded_before()
        moved_from_prospect = f"{before} AND n.group_id <> %s"
        sql = (
            f"INSERT INTO {scores} AS s (model_id, contact_id, recency_days, frequency, monetary_cents, r, f, m, "
            f"{group}, previous_group, group_changed_at, computed_at) "
            "SELECT %s, n.contact_id, n.recency_days, n.frequency, n.monetary_cents, n.r, n.f, n.m, n.group_id, "
            f"CASE WHEN {moved_from_prospect} THEN %s ELSE '' END, "
            f"CASE WHEN {moved_from_prospect} THEN %s END, %s "
            f"FROM {new} n WHERE 1 = 1 "
            f"ON CONFLICT (model_id, contact_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _SCORE_VALUES)
            + f", {group} = excluded.{group}, "
            f"previous_group = CASE WHEN {changed} THEN s.{group} ELSE s.previous_group END, "
            f"group_changed_at = CASE WHEN {changed} THEN excluded.computed_at ELSE s.group_changed_at END, "
            f"computed_at = excluded.computed_at WHERE {values_changed}"
        )
        moved = [*before_params, groups.PROSPECT]
        return sql, [self.model.pk, *moved, groups.PROSPECT, *moved, at, at]

    def changes_select(self, new: str) -> tuple[str, list[Any]]:
        """The group changes: a stored row whose group differs, or (after the first run) a
        contact without a row yet (implicitly prospect) that is no longer prospect."""
        scores = q(RfmScore._meta.db_table)
        group = q("group")
        before, before_params = self.recorded_before()
        sql = (
            "SELECT n.contact_id, COALESCE(o.group_id, %s) AS from_group, n.group_id AS to_group, n.r, n.f, n.m "
            f"FROM {new} n LEFT JOIN (SELECT contact_id, {group} AS group_id FROM {scores} WHERE model_id = %s) o "
            f"ON o.contact_id = n.contact_id WHERE (o.contact_id IS NULL AND {before} AND n.group_id <> %s) "
            "OR (o.contact_id IS NOT NULL AND o.group_id <> n.group_id)"
        )
        return sql, [groups.PROSPECT, self.model.pk, *before_params, groups.PROSPECT]

    def log_sql(self, changes: str) -> tuple[str, list[Any]]:
        log = q(RfmGroupChange._meta.db_table)
        sql = (
            f"INSERT INTO {log} (model_id, contact_id, from_group, to_group, changed_at, run_id) "
            f"SELECT %s, contact_id, from_group, to_group, %s, %s FROM {changes}"
        )
        return sql, [self.model.pk, scoring.dt_param(self.now), self.run.pk if self.run else None]

    def timeline_sql(self, changes: str) -> tuple[str, list[Any]]:
        timeline = q(StoredTimelineEntry._meta.db_table)
        at = scoring.dt_param(self.now)
        sql = (
            f"INSERT INTO {timeline} (workspace_id, contact_id, kind, operation, entity_type, entity_id, "
            "custom_event_id, changes, created_at, db_created_at) "
            f"SELECT %s, contact_id, %s, %s, 'rfm_model', %s, NULL, "
            f"{_timeline_changes_json('from_group', 'to_group')}, %s, %s FROM {changes}"
        )
        return sql, [
            self.model.workspace_id,
            GROUP_CHANGED_KIND,
            StoredTimelineEntry.Operation.INSERT,
            self.model.slug,
            self.model.slug,
            self.model.name,
            at,
            at,
        ]


def _apply_scores(
    *,
    model: RfmModel,
    now: dt.datetime,
    contact_ids: list[int] | None,
    cutpoints: dict[str, Any] | None,
    run: RfmRun | None,
) -> tuple[int, list[tuple[Any, ...]]]:
    """Score the contacts in scope (all of the workspace, or ``contact_ids``) and make the stored
    scores equal the result. Must run inside a transaction holding the model's row lock.
    Returns the number of group changes and, for a full run (``run`` given), the rows of
    ``scoring.figures_sql`` read from the scored rows in the same statement (they equal the
    stored scores afterwards: the run scored every contact of the workspace)."""
    spec = ModelSpec.of(model)
    select_sql, select_params = scoring.scores_sql(spec, now=now, contact_ids=contact_ids, cutpoints=cutpoints)
    diff = _Diff(model=model, now=now, run=run)
    if connection.vendor == "postgresql":
        changed, figures = _apply_in_one_statement(diff, select_sql, select_params, figures=run is not None)
    else:
        changed, figures = _apply_with_temporary_tables(diff, select_sql, select_params, figures=run is not None)
    _after_changes(diff.statements, changed)
    return changed, figures


_CHANGED = "changed"  # the kind of the result row that carries the number of group changes


def _apply_in_one_statement(
    diff: _Diff, select_sql: str, select_params: list[Any], *, figures: bool
) -> tuple[int, list[tuple[Any, ...]]]:
    changes_sql, changes_params = diff.changes_select("new")
    upsert_sql, upsert_params = diff.upsert_sql("new")
    log_sql, log_params = diff.log_sql("changes")
    timeline_sql, timeline_params = diff.timeline_sql("changes")
    diff.statements = _hook_statements(diff.model, diff.now, "changes")
    hooks_sql = "".join(f", hook_{i} AS ({statement.sql})" for i, statement in enumerate(diff.statements))
    # The result: the number of changes, then (a full run) the run's figures from the same rows.
    result = (
        f"SELECT '{_CHANGED}' AS kind, CAST(NULL AS text), CAST(NULL AS integer), CAST(NULL AS bigint), "
        "CAST(NULL AS bigint), CAST(NULL AS bigint), (SELECT count(*) FROM changes), CAST(NULL AS bigint)"
    )
    if figures:
        result += " UNION ALL " + scoring.figures_sql("new")
    sql = (
        f"WITH new AS MATERIALIZED ({select_sql}), changes AS MATERIALIZED ({changes_sql}), "
        f"written AS ({upsert_sql}), log AS ({log_sql}), entries AS ({timeline_sql}){hooks_sql} {result}"
    )
    params = [
        *select_params,
        *changes_params,
        *upsert_params,
        *log_params,
        *timeline_params,
        *(param for statement in diff.statements for param in statement.params),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    changed = next(int(row[6]) for row in rows if row[0] == _CHANGED)
    return changed, [row for row in rows if row[0] != _CHANGED]


def _apply_with_temporary_tables(
    diff: _Diff, select_sql: str, select_params: list[Any], *, figures: bool
) -> tuple[int, list[tuple[Any, ...]]]:
    """SQLite has no data-modifying CTEs: the scored rows and the changes go into temporary
    tables, each read by the statements that follow."""
    new, changes = f"rfm_new_{uuid.uuid4().hex[:12]}", f"rfm_changes_{uuid.uuid4().hex[:12]}"
    figure_rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {new} (contact_id bigint PRIMARY KEY, recency_days integer, frequency integer, "
            "monetary_cents bigint, r integer, f integer, m integer, group_id text)"
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE {changes} (contact_id bigint PRIMARY KEY, from_group text, to_group text, "
            "r integer, f integer, m integer)"
        )
        try:
            cursor.execute(
                f"INSERT INTO {new} (contact_id, recency_days, frequency, monetary_cents, r, f, m, group_id) "
                + select_sql,
                select_params,
            )
            changes_sql, changes_params = diff.changes_select(new)
            cursor.execute(
                f"INSERT INTO {changes} (contact_id, from_group, to_group, r, f, m) {changes_sql}", changes_params
            )
            changed = cursor.rowcount
            if changed:
                source = f"(SELECT contact_id, from_group, to_group, r, f, m FROM {changes})"
                diff.statements = _hook_statements(diff.model, diff.now, source)
                for statement in diff.statements:
                    cursor.execute(statement.sql, statement.params)
                cursor.execute(*diff.log_sql(changes))
                cursor.execute(*diff.timeline_sql(changes))
            cursor.execute(*diff.upsert_sql(new))
            if figures:
                cursor.execute(scoring.figures_sql(new))
                figure_rows = cursor.fetchall()
        finally:
            for name in (new, changes):
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
    return max(int(changed), 0), figure_rows


# ---------------------------------------------------------------------------------------
# Full runs
# ---------------------------------------------------------------------------------------


def rfm_model_compute(*, model_pk: int, version: int | None = None, now: dt.datetime | None = None) -> RfmRun | None:
    """Full run of one model (version, if given, must still be current): every contact of the
    workspace ranked and scored in one statement, the diff applied, the run recorded.

    Returns the run, or None when superseded, deleted or failed (a failure is recorded on the
    model: status ``failed`` and ``last_error``).
    """
    started = time.monotonic()
    now = now or timezone.now()
    try:
        with transaction.atomic():
            model = RfmModel.objects.live().select_for_update().filter(pk=model_pk).first()
            if model is None or (version is not None and model.version != version):
                return None
            run = RfmRun.objects.create(model=model, as_of=now, population=0)
            changed, rows = _apply_scores(model=model, now=now, contact_ids=None, cutpoints=None, run=run)
            figures = scoring.figures_of(rows, ModelSpec.of(model))
            duration_ms = int((time.monotonic() - started) * 1000)
            RfmRun.objects.filter(pk=run.pk).update(changed=changed, duration_ms=duration_ms, **figures)
            for key, value in {"changed": changed, "duration_ms": duration_ms, **figures}.items():
                setattr(run, key, value)  # the row as just written, without reading it back
            RfmModel.objects.filter(pk=model.pk).update(
                status=RfmModel.Status.ACTIVE,
                last_computed_at=now,
                last_duration_ms=duration_ms,
                last_error="",
                population=figures["population"],
                cutpoints=figures["cutpoints"],
                next_run_at=next_daily_run(timezone_name=model.timezone, now=max(now, timezone.now())),
            )
            transaction.on_commit(lambda: model_computed.send(sender=RfmModel, model=model))
    except Exception as exc:
        logger.exception("rfm full run failed: model=%s version=%s", model_pk, version)
        RfmModel.objects.filter(pk=model_pk).exclude(status=RfmModel.Status.DELETED).update(
            status=RfmModel.Status.FAILED,
            last_error=time_limits.describe_failure(exc)[:2000],
            last_duration_ms=int((time.monotonic() - started) * 1000),
        )
        return None
    logger.info("rfm model %s computed: %s customers, %s group changes", model_pk, run.population, changed)
    return run


GROUP_TALLY_LOCK = 0x52544C59  # "RTLY": one compaction of the group tallies at a time


def group_tally() -> tallies.Tally:
    """``RfmGroupTally`` (kept by triggers, migration 0002): summed per (model, group)."""
    return tallies.Tally(
        table=RfmGroupTally._meta.db_table,
        keys=("model_id", connection.ops.quote_name("group")),
        sums={"contacts": "SUM(contacts)"},
        lock=GROUP_TALLY_LOCK,
    )


def rfm_group_tally_compact() -> int:
    """Fold each (model, group)'s size rows into one, dropping those of deleted models (they sum
    to nothing): ``tallies.compact``. Returns the rows folded away."""
    return tallies.compact(group_tally())


def rfm_group_tally_rebuild() -> int:
    """Recompute ``RfmGroupTally`` from the scores (``tallies.recount``): one row per (model,
    group), the scores locked against writes meanwhile. Returns the rows written."""
    return tallies.recount(group_tally(), RfmScore._meta.db_table)


def rfm_models_due(*, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """Models whose daily run is due, and runs that never finished (still computing after
    their task was lost): (pk, version) to compute."""
    now = now or timezone.now()
    stale = now - dt.timedelta(minutes=10)
    due = RfmModel.objects.live().filter(next_run_at__lte=now) | RfmModel.objects.filter(
        status=RfmModel.Status.COMPUTING, updated_at__lt=stale
    )
    return list(due.order_by("pk").distinct().values_list("pk", "version"))


# ---------------------------------------------------------------------------------------
# Re-score after events (the contacts refresh queue's drain, phase SCORE)
# ---------------------------------------------------------------------------------------


def rfm_rescore_contacts(*, workspace_id: str, contact_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Re-score these contacts under every computed model of the workspace against its stored
    cut points (no re-ranking). One statement per model; returns the number of group changes."""
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    at = now or timezone.now()
    computed = RfmModel.objects.live().filter(workspace_id=workspace_id, last_computed_at__isnull=False)
    with transaction.atomic():
        # Every model's row locked first (in pk order, as full runs lock them), then scored.
        locked = list(computed.select_for_update().order_by("pk"))
        return sum(
            _apply_scores(model=model, now=at, contact_ids=ids, cutpoints=model.cutpoints, run=None)[0]
            for model in locked
        )
