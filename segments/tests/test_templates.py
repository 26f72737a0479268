"""The three segment templates on a small hand-built history, evaluated at two moments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from events_platform.workspaces.models import Workspace
from segments.rules import TEMPLATES, validate_tree
from segments.selectors import segment_match_count, segment_matching_contacts
from segments.tests.conftest import store_history
from segments.tests.oracle import matching_contact_ids
from segments.tests.trees import contact_row, purchase_row

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)
# 20 days later: purchases made 50 days before NOW have left VIP's 60-day window, and
# purchases made 80 days before NOW have left At-Risk's 90-day "no purchase" window.
LATER = NOW + dt.timedelta(days=20)


def _purchases(key: str, *values_days_ago: tuple[str, int], deleted: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """Purchases of ``key``: (amount, days before NOW); indexes listed in ``deleted`` are soft-deleted."""
    return [
        purchase_row(
            key,
            amount,
            NOW - dt.timedelta(days=days),
            event_name="order.completed",
            properties={"currency": "USD"},
            deleted_at=NOW if index in deleted else None,
        )
        for index, (amount, days) in enumerate(values_days_ago)
    ]


HISTORY = {
    # VIP now (1250 over 5, last 50 days ago); ages out of the 60-day window by LATER.
    "vip": _purchases("vip", *[("250", d) for d in (200, 150, 100, 70, 50)]),
    # Would be VIP, but a refund drops the total to 950 (the refund still counts as an event).
    "refunded_vip": _purchases("refunded_vip", *[("220", d) for d in (200, 150, 100, 70, 50)], ("-150", 55)),
    # Would be VIP, but one of its five purchases was deleted: 4 purchases worth 1000.
    "deleted_vip": _purchases("deleted_vip", *[("250", d) for d in (200, 150, 100, 70, 50)], deleted=(0,)),
    # At risk: 600 spent, nothing for 100 days.
    "sleeper": _purchases("sleeper", ("300", 200), ("300", 100)),
    # 600 spent, bought 80 days ago: not at risk now, at risk by LATER.
    "recent_big": _purchases("recent_big", ("300", 200), ("300", 80)),
    # A refund drops the total to 400: never at risk.
    "refund_sleeper": _purchases("refund_sleeper", ("300", 200), ("300", 150), ("-200", 120)),
    # First purchase ever, 15 days ago, over 200: new high-potential now, not by LATER.
    "newbie": _purchases("newbie", ("250", 15)),
    # First purchase was only 150.
    "small_first": _purchases("small_first", ("150", 5), ("500", 2)),
    # Bought 60 days ago already: not new.
    "old_customer": _purchases("old_customer", ("300", 60), ("300", 2)),
    # Its 100 purchase 5 days ago was deleted, so its first purchase is the 250 of 3 days ago.
    "deleted_first": _purchases("deleted_first", ("100", 5), ("250", 3), deleted=(0,)),
}

EXPECTED = {
    ("vip", NOW): {"vip"},
    ("vip", LATER): set(),
    ("at_risk_high_value", NOW): {"sleeper"},
    ("at_risk_high_value", LATER): {"sleeper", "recent_big"},
    ("new_high_potential", NOW): {"newbie", "deleted_first"},
    ("new_high_potential", LATER): {"deleted_first"},
}


@pytest.mark.parametrize(("template", "now"), list(EXPECTED))
def test_template_members(segments_workspace: Workspace, template: str, now: dt.datetime) -> None:
    """Refunds lower totals, deleted events do not count, and windows move with ``now``."""
    # given
    contacts = [contact_row(key, created_at=NOW - dt.timedelta(days=365)) for key in [*HISTORY, "no_purchases"]]
    events = [dict(event) for events in HISTORY.values() for event in events]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)
    tree = TEMPLATES[template]["tree"]

    # when
    ids = set(
        segment_matching_contacts(
            workspace_id=segments_workspace.pk, tree=tree, timezone_name="UTC", now=now
        ).values_list("pk", flat=True)
    )
    count = segment_match_count(workspace_id=segments_workspace.pk, tree=tree, timezone_name="UTC", now=now)

    # then
    assert {contact["key"] for contact in contacts if contact["id"] in ids} == EXPECTED[(template, now)]
    assert count == len(EXPECTED[(template, now)])
    assert ids == matching_contact_ids(
        validate_tree(tree), contacts=contacts, events=events, now=now, timezone_name="UTC"
    )


def test_templates_are_valid_and_described() -> None:
    """Every template has a name, description, colour and a tree that validates unchanged."""
    # given / when / then
    for template in TEMPLATES.values():
        assert template["name"] and template["description"] and template["color"].startswith("#")
        assert validate_tree(template["tree"]) == template["tree"]
