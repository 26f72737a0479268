"""What segments does when the layers below announce something (they never import us).

Three subscriptions, registered in ``SegmentsConfig.ready()``: the drain hook ``segments.evaluate``
of the contacts refresh queue (``contacts/refresh.py`` documents the queue, the drain and its
hooks). Every drain calls it inside its transaction, after the contacts' totals are refreshed:
the drained contacts are re-evaluated against every live segment of their workspace, and the
membership changes commit, or roll back, together with the drain's claim (RFM's re-score hook
runs before it in the same drain, so ``rfm`` leaves see the fresh scores). The signal
``rfm.services.model_computed``, after a full RFM run's commit: segments whose tree reads that
model's scores rebuild. And the signal ``contacts.signals.demo_workspace_ready`` (``make run``):
the demo workspace gets a segment from each template, built, unless it already has segments.
"""

from typing import Any

from contacts.refresh import DrainedContacts

from . import services


def rebuild_after_rfm_run(sender: Any, *, model: Any, **kwargs: Any) -> None:
    """A full RFM run rescored every contact: segments using that model's scores rebuild."""
    services.segments_rebuild_for_rfm_model(workspace_id=model.workspace_id, model_slug=model.slug)


def evaluate_drained_contacts(batch: DrainedContacts) -> None:
    services.segments_refresh_contacts(workspace_id=batch.workspace_id, contact_ids=batch.contact_ids, now=batch.now)


def demo_segments_create(sender: Any, *, workspace_id: str, **kwargs: Any) -> str:
    created = services.segments_from_templates_create(workspace_id=workspace_id)
    return (
        "Segments from the templates: " + ", ".join(f"{s.name} ({s.member_count})" for s in created) if created else ""
    )
