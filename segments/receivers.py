"""Listens to the contacts layer: changed contacts are re-evaluated in the background."""

from typing import Any

from django.conf import settings
from django.dispatch import receiver

from contacts.signals import contacts_changed

from .services import contacts_queue_refresh
from .tasks import segments_refresh_pending_task


@receiver(contacts_changed, dispatch_uid="segments.refresh_changed_contacts")
def refresh_changed_contacts(sender: Any, *, workspace_id: str, contact_ids: list[int], **kwargs: Any) -> None:
    # Sent after the commit. The contacts join the workspace's queue, and a task shortly after
    # claims everything queued by then: contacts that change close together are evaluated together.
    contacts_queue_refresh(workspace_id=workspace_id, contact_ids=contact_ids)
    segments_refresh_pending_task.apply_async((workspace_id,), countdown=settings.SEGMENT_REFRESH_BATCH_DELAY)
