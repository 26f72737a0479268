"""What contacts does when a model below it changes: a workspace's time zone changed rebuilds
its dashboard activity rows, whose old buckets the compaction folded into that zone's days
(``activity.py``); the next compaction folds them again in the new zone."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from events_platform.workspaces.models import Workspace

from . import activity


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
        activity.activity_rebuild(workspace_id=instance.pk)
