"""Listens to the contacts layer: changed contacts are re-evaluated in the background."""

from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.dispatch import receiver

from contacts.signals import contacts_changed

from .services import contacts_queue_refresh
from .tasks import segments_refresh_pending_task


@cache
def _redis() -> redis.Redis:
    # A client (a connection pool) per process; the state it guards lives in Redis.
    return redis.Redis.from_url(settings.REDIS_URL)


def _drain_already_scheduled(workspace_id: str, delay: float) -> bool:
    """Whether a drain of this workspace's queue was published less than half a delay ago.

    Such a drain starts at least half a delay from now, after this commit, so it claims our
    contacts too: publishing another would only make the worker claim an empty queue. The
    mark lives in Redis, so every web process sees the same one; the periodic task re-drains
    anything a lost publish left behind.
    """
    conf = segments_refresh_pending_task.app.conf
    if conf.task_always_eager or not settings.REDIS_URL or delay < 0.02:
        return False
    key = f"segments:drain-scheduled:{conf.task_default_queue}:{workspace_id}"
    return not _redis().set(key, 1, nx=True, px=int(delay * 500))


@receiver(contacts_changed, dispatch_uid="segments.refresh_changed_contacts")
def refresh_changed_contacts(sender: Any, *, workspace_id: str, contact_ids: list[int], **kwargs: Any) -> None:
    # Sent after the commit. The contacts join the workspace's queue, and a task shortly after
    # claims everything queued by then: contacts that change close together are evaluated together.
    contacts_queue_refresh(workspace_id=workspace_id, contact_ids=contact_ids)
    delay = settings.SEGMENT_REFRESH_BATCH_DELAY
    if _drain_already_scheduled(workspace_id, delay):
        return
    segments_refresh_pending_task.apply_async((workspace_id,), countdown=delay)
