"""Background work for segments. Tasks take ids, return quietly when rows are gone, and are
idempotent: a build recomputes and replaces, a refresh re-evaluates and applies a diff."""

from datetime import timedelta

from celery import shared_task

from . import services
from .models import Segment

# Queued contacts are normally drained within a second; older ones lost their drain.
STALE_PENDING = timedelta(minutes=1)


@shared_task(acks_late=True, ignore_result=True)
def segment_build_task(segment_pk: int, version: int) -> bool:
    if not Segment.objects.filter(pk=segment_pk).exists():
        return False
    return services.segment_build(segment_pk=segment_pk, version=version)


@shared_task(acks_late=True, ignore_result=True)
def segments_refresh_pending_task(workspace_id: str) -> int:
    """Re-evaluate the contacts queued for this workspace, a bounded batch at a time."""
    claimed, more = services.segments_refresh_pending(workspace_id=workspace_id)
    if more:
        segments_refresh_pending_task.delay(workspace_id)
    return claimed


@shared_task(ignore_result=True)
def segments_refresh_due_task() -> int:
    """Re-evaluate segments with rolling timeframes, restart builds whose lease expired, and
    drain contact queues whose drain was lost (its publish failed after the commit)."""
    due = services.segments_due_for_refresh()
    for segment_pk, version in due:
        segment_build_task.delay(segment_pk, version)
    for workspace_id in services.workspaces_with_stale_pending(older_than=STALE_PENDING):
        segments_refresh_pending_task.delay(workspace_id)
    return len(due)
