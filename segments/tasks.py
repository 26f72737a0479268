"""Background work for segments. Tasks take ids, return quietly when rows are gone, and are
idempotent: a build recomputes and replaces, a refresh re-evaluates and applies a diff."""

from celery import shared_task

from . import services
from .models import Segment


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
    """Re-evaluate segments with rolling timeframes, and restart builds whose lease expired."""
    due = services.segments_due_for_refresh()
    for segment_pk, version in due:
        segment_build_task.delay(segment_pk, version)
    return len(due)
