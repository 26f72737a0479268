"""Listens to the contacts layer: changed contacts are re-evaluated in the background."""

from typing import Any

from django.dispatch import receiver

from contacts.signals import contacts_changed

from .tasks import segments_refresh_contacts_task


@receiver(contacts_changed, dispatch_uid="segments.refresh_changed_contacts")
def refresh_changed_contacts(sender: Any, *, workspace_id: str, contact_ids: list[int], **kwargs: Any) -> None:
    # Sent after the commit; one task per committed write carries all its contacts at once.
    segments_refresh_contacts_task.delay(workspace_id, list(contact_ids))
