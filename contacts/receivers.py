"""What contacts does when a model below it changes: a workspace's time zone changed rebuilds
its dashboard activity rows, whose old buckets the compaction folded into that zone's days
(``activity.py``), in the background once the change commits (seconds at 10M events; until
then the dashboard's days older than 32 days fall on the old zone's); the next compaction folds
them again in the new zone."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from events_platform.workspaces.models import Workspace

from . import tasks


@receiver(pre_save, sender=Workspace, dispatch_uid="contacts.workspace_timezone_before")
def remember_timezone(sender: type[Workspace], instance: Workspace, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance._state.adding:
        return
    instance._stored_timezone = (  # type: ignore[attr-defined]
        Workspace.objects.filter(pk=instance.pk).values_list("timezone", flat=True).first()
    )


@receiver(post_save, sender=Workspace, dispatch_uid="contacts.workspace_timezone_after")
def refold_activity(sender: type[Workspace], instance: Workspace, created: bool, **kwargs: Any) -> None:
    stored = getattr(instance, "_stored_timezone", None)
    if not created and stored is not None and stored != instance.timezone:
        workspace_id = instance.pk
        transaction.on_commit(lambda: tasks.contacts_activity_rebuild_task.delay(workspace_id))
