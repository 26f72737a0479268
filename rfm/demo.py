"""``make run``'s demo workspace opens with one RFM model already computed: the answer to the
``contacts.signals.demo_workspace_ready`` signal (connected in ``RfmConfig.ready()``)."""

from __future__ import annotations

from typing import Any

from . import services
from .models import RfmModel


def demo_model_create(sender: Any, *, workspace_id: str, **kwargs: Any) -> str:
    """The Klaviyo preset as model ``default``, computed before returning, for a workspace that
    has no RFM model yet; otherwise nothing."""
    if RfmModel.objects.live().filter(workspace_id=workspace_id).exists():
        return ""
    model = services.rfm_model_create(
        workspace_id=workspace_id, slug="default", name="Purchases RFM", settings={"preset": "klaviyo"}
    )
    model.refresh_from_db()
    if model.last_computed_at is None:  # a worker would compute it later: compute it now
        services.rfm_model_compute(model_pk=model.pk, version=model.version)
        model.refresh_from_db()
    return f"RFM model “{model.name}”: {model.population} customers scored"
