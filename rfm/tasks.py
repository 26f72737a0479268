"""Background work for RFM. Tasks take ids, return quietly when rows are gone, and are idempotent:
a full run recomputes and applies a diff.

Contacts changed by ingest are re-scored by the contacts refresh queue's drain, through the hook
in ``receivers.py``."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from events_platform.celery import delay_each

from . import services
from .models import RfmModel


@shared_task(base=DjangoTask, acks_late=True, ignore_result=True)
def rfm_model_compute_task(model_pk: int, version: int) -> bool:
    if not RfmModel.objects.filter(pk=model_pk).exists():
        return False
    return services.rfm_model_compute(model_pk=model_pk, version=version) is not None


@shared_task(ignore_result=True)
def rfm_models_due_task() -> int:
    """Start the daily full runs that are due (00:05 model time) and runs whose task was lost."""
    return delay_each(rfm_model_compute_task, services.rfm_models_due())


@shared_task(ignore_result=True)
def rfm_group_tally_compact_task() -> int:
    """Fold the group sizes' delta rows into one row per (model, group)."""
    return services.rfm_group_tally_compact()
