"""The seed's three RFM segments end to end through the API, on a hand-built shop.

Segments are created with ``segments.create`` + template, events arrive through the ingest
service (their after-commit refresh runs in-process), and membership is read back through
``segments.contacts``, ``segments.get``, ``contacts.get`` and ``timeline.list``. The engine side
of the same semantics is pinned in ``test_templates.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from events_platform.workspaces.models import Workspace
from segments import services
from segments.models import Segment, SegmentMembershipChange
from segments.tests.api_helpers import CaptureOnCommit, create_from_template, get, purchase, store

TEMPLATES = ("vip", "at_risk_high_value", "new_high_potential")


def shop_history(now: dt.datetime) -> list[Any]:
    def buys(email: str, *amount_days: tuple[str, int]) -> list[Any]:
        return [
            purchase(f"{email}@x.io", f"{email}_{index}", amount, days_ago=days, now=now)
            for index, (amount, days) in enumerate(amount_days)
        ]

    return [
        # VIP: 1250 over 5 purchases, the latest 50 days ago (out of the 60-day window 20 days on).
        *buys("vip", *[("250", d) for d in (200, 150, 100, 70, 50)]),
        # VIP with 1100 over 5 purchases, until a refund of 150 arrives.
        *buys("refunded_vip", *[("220", d) for d in (200, 150, 100, 70, 50)]),
        # VIP with exactly 5 purchases worth 1250, until one of them is deleted.
        *buys("deleted_vip", *[("250", d) for d in (200, 150, 100, 70, 50)]),
        # At risk: 600 spent, nothing for 100 days.
        *buys("sleeper", ("300", 200), ("300", 100)),
        # At risk with 600, until a (back-dated) refund of 200 arrives.
        *buys("refunded_sleeper", ("300", 200), ("300", 150)),
        # 600 spent, the last purchase 80 days ago: at risk only 10+ days on.
        *buys("recent_big", ("300", 200), ("300", 80)),
        # First purchase ever 15 days ago, worth 250: new high-potential, until it is 30+ days old.
        *buys("newbie", ("250", 15)),
        # New, but the first purchase was only 150.
        *buys("small_first", ("150", 5), ("500", 2)),
    ]


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now()


@pytest.fixture
def rfm(
    workspace: Workspace,
    api_client: APIClient,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    now: dt.datetime,
) -> None:
    """The shop's history, and the three template segments created and built through the API."""
    store(workspace.id, shop_history(now))
    for template in TEMPLATES:
        response = create_from_template(api_client, template, django_capture_on_commit_callbacks)
        assert response.status_code == 201, response.content


def members(client: APIClient, slug: str) -> set[str]:
    """Every member's email, read page by page through segments.contacts."""
    emails: list[str] = []
    params: dict[str, Any] = {"workspace_id": "acme", "id": slug, "limit": 2}
    while True:
        body = get(client, "segments.contacts", params).json()
        emails += [contact["email"].removesuffix("@x.io") for contact in body["contacts"]]
        if not body["next_cursor"]:
            assert len(emails) == len(set(emails))
            return set(emails)
        params["cursor"] = body["next_cursor"]


def all_members(client: APIClient) -> dict[str, set[str]]:
    return {slug: members(client, slug) for slug in TEMPLATES}


def counts(client: APIClient) -> dict[str, int]:
    rows = get(client, "segments.list", {"workspace_id": "acme"}).json()["segments"]
    return {row["id"]: row["member_count"] for row in rows}


def segment_entries(client: APIClient, email: str) -> list[tuple[str, str]]:
    """The contact's segment timeline entries, oldest first, as (kind, segment id)."""
    response = get(client, "timeline.list", {"workspace_id": "acme", "email": f"{email}@x.io", "kind": "segment.*"})
    assert response.status_code == 200, response.content
    return [(entry["kind"], entry["entity_id"]) for entry in reversed(response.json()["timeline"])]


INITIAL = {
    "vip": {"vip", "refunded_vip", "deleted_vip"},
    "at_risk_high_value": {"sleeper", "refunded_sleeper"},
    "new_high_potential": {"newbie"},
}


def test_templates_created_through_the_api_have_the_expected_members(rfm: None, api_client: APIClient) -> None:
    """Each template segment is active with exactly its RFM members, and contacts.get agrees."""
    # when
    found = all_members(api_client)

    # then
    assert found == INITIAL
    assert counts(api_client) == {slug: len(emails) for slug, emails in INITIAL.items()}
    for slug in TEMPLATES:
        assert get(api_client, "segments.get", {"workspace_id": "acme", "id": slug}).json()["segment"]["status"] == (
            "active"
        )
    sleeper = get(api_client, "contacts.get", {"workspace_id": "acme", "email": "sleeper@x.io"}).json()
    assert [segment["id"] for segment in sleeper["contact"]["segments"]] == ["at_risk_high_value"]
    assert segment_entries(api_client, "newbie") == [("segment.joined", "new_high_potential")]


def test_a_refund_below_a_threshold_moves_the_contact_out(
    rfm: None, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit, now: dt.datetime
) -> None:
    """Refunds reduce the sum: 1100 - 150 leaves VIP, 600 - 200 leaves At-Risk; counts and timeline follow."""
    # when: the refunds arrive; their after-commit refresh runs in-process.
    with django_capture_on_commit_callbacks(execute=True):
        store(
            "acme",
            [
                purchase("refunded_vip@x.io", "refund_1", "-150", days_ago=55, now=now),
                purchase("refunded_sleeper@x.io", "refund_2", "-200", days_ago=120, now=now),
            ],
        )

    # then
    assert all_members(api_client) == {
        "vip": {"vip", "deleted_vip"},
        "at_risk_high_value": {"sleeper"},
        "new_high_potential": {"newbie"},
    }
    assert counts(api_client) == {"vip": 2, "at_risk_high_value": 1, "new_high_potential": 1}
    assert segment_entries(api_client, "refunded_vip") == [("segment.joined", "vip"), ("segment.left", "vip")]
    assert segment_entries(api_client, "refunded_sleeper") == [
        ("segment.joined", "at_risk_high_value"),
        ("segment.left", "at_risk_high_value"),
    ]
    explained = get(
        api_client, "segments.explain", {"workspace_id": "acme", "segment_id": "vip", "email": "refunded_vip@x.io"}
    ).json()
    assert [(c["actual"], c["held"]) for c in explained["conditions"]] == [
        ("sum = 950.00", False),
        ("count = 6", True),
        ("count = 2", True),
    ]


def test_a_soft_deleted_event_no_longer_counts_and_restoring_it_counts_again(
    rfm: None, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit, now: dt.datetime
) -> None:
    """Deleting one of deleted_vip's 5 purchases drops it from VIP (4 purchases); restoring it brings it back."""
    # given
    first_purchase = purchase("deleted_vip@x.io", "deleted_vip_0", "250", days_ago=200, now=now)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        store("acme", [purchase("deleted_vip@x.io", "deleted_vip_0", "250", days_ago=200, now=now, deleted=True)])
    after_delete = members(api_client, "vip")
    explained = get(
        api_client, "segments.explain", {"workspace_id": "acme", "segment_id": "vip", "email": "deleted_vip@x.io"}
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        store("acme", [first_purchase])

    # then
    assert after_delete == {"vip", "refunded_vip"}
    assert [c["actual"] for c in explained["conditions"]][:2] == ["sum = 1000.00", "count = 4"]
    assert members(api_client, "vip") == INITIAL["vip"]
    assert segment_entries(api_client, "deleted_vip") == [
        ("segment.joined", "vip"),
        ("segment.left", "vip"),
        ("segment.joined", "vip"),
    ]


def test_events_that_age_out_of_a_window_move_contacts_at_the_next_build(
    rfm: None, api_client: APIClient, now: dt.datetime
) -> None:
    """20 days on, with no new event: the VIPs leave (last purchase 70 days old), recent_big becomes
    at risk (nothing for 100 days), newbie is no longer new (first purchase 35 days old)."""
    # given
    later = now + dt.timedelta(days=20)

    # when: the scheduled re-evaluation of rolling segments, at that later moment.
    for segment in Segment.objects.filter(workspace_id="acme"):
        assert services.segment_build(segment_pk=segment.pk, version=segment.version, now=later)

    # then
    assert all_members(api_client) == {
        "vip": set(),
        "at_risk_high_value": {"sleeper", "refunded_sleeper", "recent_big"},
        "new_high_potential": set(),
    }
    assert counts(api_client) == {"vip": 0, "at_risk_high_value": 3, "new_high_potential": 0}
    assert segment_entries(api_client, "vip") == [("segment.joined", "vip"), ("segment.left", "vip")]
    assert segment_entries(api_client, "recent_big") == [("segment.joined", "at_risk_high_value")]
    assert segment_entries(api_client, "newbie") == [
        ("segment.joined", "new_high_potential"),
        ("segment.left", "new_high_potential"),
    ]
    left_at = SegmentMembershipChange.objects.filter(change="exited").values_list("changed_at", flat=True)
    assert set(left_at) == {later}
