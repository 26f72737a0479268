"""The builder edits Notifuse's leaves: a contacts leaf's DimensionFilters and a contact_timeline
leaf survive edit -> save unchanged, with their controls, words and errors where they belong."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

from django.test import Client

from events_platform.workspaces.models import Workspace
from segments import rules, services
from segments.models import Segment
from segments.tests.api_helpers import CaptureOnCommit
from segments.tests.trees import all_of, leaf, timeline_leaf

FILTERS = leaf(
    "contacts",
    "contact",
    {
        "filters": [
            {
                "field_name": "email",
                "field_type": "string",
                "operator": "contains",
                "string_values": ["@acme.com", "@x.io"],
            },
            {
                "field_name": "custom_json_1",
                "field_type": "number",
                "operator": "gte",
                "json_path": ["orders", "0"],
                "number_values": [2.5],
            },
            {
                "field_name": "created_at",
                "field_type": "time",
                "operator": "in_date_range",
                "string_values": ["2026-01-01", "2026-03-31T23:59:59Z"],
            },
            {"field_name": "phone", "field_type": "string", "operator": "is_set"},
        ]
    },
)
TIMELINE = timeline_leaf("custom_event.order.completed", "exactly", 0, "in_the_last_days", "90", negate=True)


class _Form(HTMLParser):
    """The controls a browser would post from the page's segment form (inputs, checked boxes, selects)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self.data.setdefault(name, "")
        elif tag == "select" and name:
            self._select, self._first = name, None
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = a.get("value") or ""
                self.data[self._select] = self._first
            if "selected" in a:
                self.data[self._select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _posted_controls(page: str) -> dict[str, str]:
    form = _Form()
    form.feed(page)
    return {name: value for name, value in form.data.items() if name != "tree_json"}


def _refreshed(client: Client, data: dict[str, str]) -> dict[str, str]:
    """The controls of the new-segment page once ``data`` is posted with Refresh (the page redrawn for a new choice)."""
    return _posted_controls(client.post("/segments/new-segment/", data | {"op": "refresh"}).content.decode())


def test_the_builder_round_trips_dimension_filters_and_a_timeline_leaf(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A segment made through the API with Notifuse's leaves is shown by the builder in words and
    with its controls; saving the page as it is keeps the tree exactly."""
    # given
    tree = rules.validate_tree(all_of(FILTERS, TIMELINE))
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_create(workspace_id=workspace.id, slug="ported", name="Ported", tree=tree)
    # when
    edit = member_client.get("/segments/ported/edit/").content.decode()
    data = _posted_controls(edit)
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post("/segments/ported/edit/", data | {"op": "save"})
    # then
    assert response.status_code == 302, html.unescape(response.content.decode())[:3000]
    assert Segment.objects.get(slug="ported").tree == tree
    text = html.unescape(edit)
    assert "Contact email contains “@acme.com” or “@x.io”" in text
    assert "Not: has timeline entries “custom_event.order.completed” exactly 0 times in the last 90 days" in text
    assert data["n.0.mode"] == "filters" and data["n.0.filter_path_1"] == "orders.0"
    assert data["n.0.filter_value_0_1"] == "@x.io" and data["n.1.timeframe_value_0"] == "90"


def test_the_builder_adds_a_filter_row_and_shows_errors_at_their_controls(
    member_client: Client, workspace: Workspace
) -> None:
    """+ Filter adds a row; a bad value is reported next to its own input."""
    # given
    page = member_client.get("/segments/new-segment/").content.decode()
    data = _posted_controls(page) | {"name": "Notifuse", "n.0.source": "contacts", "n.0.mode": "filters"}
    data = _refreshed(member_client, data)
    # when
    added = member_client.post("/segments/new-segment/", data | {"op": "add_filter:n.0"}).content.decode()
    data = _posted_controls(added) | {
        "n.0.filter_field_1": "custom_number_1",
        "n.0.filter_operator_1": "gte",
        "n.0.filter_value_1_0": "",
        "n.0.filter_value_0_0": "@acme.com",
    }
    saved = member_client.post("/segments/new-segment/", data | {"op": "save"})
    # then
    assert 'name="n.0.filter_field_1"' in added
    assert saved.status_code == 400
    text = html.unescape(saved.content.decode())
    assert "'gte' needs number_values." in text
    assert not Segment.objects.filter(workspace=workspace, slug="notifuse").exists()


def test_a_new_timeline_condition_is_built_in_the_builder(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Choosing the timeline source offers its controls (kind, how often, RFC 3339 dates) and saves."""
    # given
    page = member_client.get("/segments/new-segment/").content.decode()
    data = _posted_controls(page) | {"name": "Never opened", "n.0.source": "contact_timeline"}
    data = _refreshed(member_client, data) | {
        "n.0.entry_kind": "contact.updated",
        "n.0.count_operator": "at_most",
        "n.0.count_value": "0",
        "n.0.timeframe_operator": "after_date",
    }
    shown = member_client.post("/segments/new-segment/", data | {"op": "refresh"}).content.decode()
    data = _posted_controls(shown) | {"n.0.timeframe_value_0": "2026-03-01T00:00:00Z"}
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post("/segments/new-segment/", data | {"op": "save"})
    # then
    assert 'name="n.0.entry_kind"' in shown and "Date (RFC 3339)" in shown
    assert response.status_code == 302, html.unescape(response.content.decode())[:3000]
    body: dict[str, Any] = Segment.objects.get(slug="never_opened").tree["branch"]["leaves"][0]["leaf"]
    assert body["contact_timeline"] == {
        "kind": "contact.updated",
        "count_operator": "at_most",
        "count_value": 0,
        "timeframe_operator": "after_date",
        "timeframe_values": ["2026-03-01T00:00:00Z"],
    }
