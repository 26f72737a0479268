"""Background work for segments. Tasks take ids, return quietly when rows are gone, and are
idempotent: a build recomputes and replaces, a refresh re-evaluates and applies a diff.

Contacts changed by ingest are re-evaluated by the contacts refresh queue's drain
(``contacts.tasks.contacts_refresh_pending_task``), through the hook in ``receivers.py``."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from events_platform.celery import delay_each

from . import services
from .models import Segment


# DjangoTask is what Celery's Django fixup makes every task; naming it types delay_on_commit.
@shared_task(base=DjangoTask, acks_late=True, ignore_result=True)
def segment_build_task(segment_pk: int, version: int) -> bool:
    if not Segment.objects.filter(pk=segment_pk).exists():
        return False
    return services.segment_build(segment_pk=segment_pk, version=version)


@shared_task(ignore_result=True)
def segments_resume_builds_task() -> int:
    """The recovery sweep (every REFRESH_SWEEP_INTERVAL): publish again the builds whose publish
    was lost or whose worker died."""
    return delay_each(segment_build_task, services.segment_builds_to_resume())


@shared_task(ignore_result=True)
def segments_refresh_due_task() -> int:
    """Re-evaluate segments with rolling timeframes and restart builds whose lease expired."""
    return delay_each(segment_build_task, services.segments_due_for_refresh())
