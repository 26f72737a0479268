"""Background work for contacts: the refresh queue's drain and its periodic safety net, and the
compaction of the dashboard's activity rows.

Tasks take ids, call one service and are idempotent by their data (see ``refresh.py``)."""

from celery import shared_task

from . import activity, refresh


@shared_task(acks_late=True, ignore_result=True)
def contacts_refresh_pending_task(workspace_id: str) -> int:
    """Drain the contacts queued for this workspace, a bounded batch at a time."""
    claimed, more = refresh.contacts_refresh_pending(workspace_id=workspace_id)
    if more:
        contacts_refresh_pending_task.delay(workspace_id)
    return claimed


@shared_task(ignore_result=True)
def contacts_refresh_stale_task() -> int:
    """Drain the queues whose drain was lost (its publish failed after the commit, or its worker
    died: its claims are handed back first)."""
    refresh.release_abandoned_claims()
    stale = refresh.workspaces_with_stale_pending(older_than=refresh.STALE_PENDING)
    for workspace_id in stale:
        contacts_refresh_pending_task.delay(workspace_id)
    return len(stale)


@shared_task(ignore_result=True)
def contacts_activity_compact_task() -> int:
    """Fold the dashboard's activity deltas into one row per bucket and the contact counts into
    one row per workspace (``activity.py``)."""
    return activity.activity_compact() + activity.contact_tally_compact()


@shared_task(ignore_result=True)
def contacts_activity_rebuild_task(workspace_id: str) -> int:
    """Recompute a workspace's activity rows from its events (its time zone changed: the next
    compaction folds them into the new zone's days)."""
    return activity.activity_rebuild(workspace_id=workspace_id)
