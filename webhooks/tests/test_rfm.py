"""rfm.group_changed: recorded by the RFM scoring diff's own statement (a full run or the re-score
after an event), only when a subscription wants it, delivered with the contact, the model, both
groups and the new scores; a rolled-back re-score records nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

from contacts.models import Contact
from rfm import services as rfm
from rfm.models import RfmScore
from webhooks.models import WebhookDelivery, WebhookOutbox

from .conftest import buy, subscribe

URL = "https://hooks.example.com/in"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    from webhooks import network

    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")])


def _model(workspace: Any, capture: Any) -> Any:
    with capture(execute=True):
        for i in range(6):
            buy(workspace, f"old{i}@example.com", f"o{i}", "30", days_ago=5 + 30 * i)
        return rfm.rfm_model_create(workspace_id=workspace.id, slug="default", name="RFM")


def test_a_first_purchase_emits_rfm_group_changed(workspace: Any, django_capture_on_commit_callbacks: Any) -> None:
    """The first run records no transitions; a new buyer's re-score moves it from prospect, and
    the delivery says who, under which model, from and to which group, with its scores."""
    # given
    subscribe(workspace, URL, event_types=["rfm.group_changed"])
    _model(workspace, django_capture_on_commit_callbacks)
    assert not WebhookOutbox.objects.exists() and not WebhookDelivery.objects.exists()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        buy(workspace, "new@example.com", "n1", "20", days_ago=0)
    # then
    contact = Contact.objects.get(email="new@example.com")
    score = RfmScore.objects.get(contact=contact)
    body = json.loads(WebhookDelivery.objects.get().body)
    assert body["type"] == "rfm.group_changed"
    assert body["data"] == {
        "email": "new@example.com",
        "contact_id": contact.pk,
        "model": "default",
        "from_group": "prospect",
        "to_group": score.group,
        "r": score.r,
        "f": score.f,
        "m": score.m,
    }
    assert score.group == "new_customers"


def test_only_wanted_and_committed_changes_are_recorded(
    workspace: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A subscription to other types records nothing; a re-score rolled back records nothing."""
    # given
    subscribe(workspace, URL, event_types=["segment.joined"])
    _model(workspace, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        buy(workspace, "new@example.com", "n1", "20", days_ago=0)
    assert not WebhookOutbox.objects.exists()
    # given
    subscribe(workspace, URL, event_types=["rfm.group_changed"], name="rfm")
    buy(workspace, "other@example.com", "n2", "20", days_ago=0)
    other = Contact.objects.get(email="other@example.com")
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        rfm.rfm_rescore_contacts(workspace_id=workspace.id, contact_ids=[other.pk])
        assert WebhookOutbox.objects.filter(event_type="rfm.group_changed").count() == 1
        raise RuntimeError("rolled back")
    # then
    assert not WebhookOutbox.objects.exists()
    assert not RfmScore.objects.filter(contact=other).exists()
