"""Background work for contacts: the refresh queue's drain and its periodic safety net, and the
compaction of the dashboard's activity rows.

Tasks take ids, call one service and are idempotent by their data (see ``refresh.py``)."""

from celery import shared_task

from . import activity, refresh


@shared_task(acks_late=True, ignore_result=True)
def contacts_refresh_pending_task(workspace_id: str) -> int:
    """Drain the contacts queued for this workspace, a bounded batch at a time.

    Contacts still queued after a full batch are a backlog: the next drain starts at once.
    Fewer were queued by writes since the claim, whose own drains are scheduled (a write
    publishes one, or finds one due after its commit): the next drain is scheduled as a write's
    would be, batched with theirs. Publishing it at once made a steady stream of writes a chain
    of drains one after another, each claiming the few contacts queued during the previous
    (about 48 drains a second, the worker busy 80% of the time, beside 150 upserts a second).
    """
    claimed, more = refresh.contacts_refresh_pending(workspace_id=workspace_id)
    if more:
        if claimed >= refresh.PENDING_BATCH:
            contacts_refresh_pending_task.delay(workspace_id)
        else:
            refresh.drain_schedule(workspace_id=workspace_id)
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
