"""segments.* as a Notifuse client uses them (NOTIFUSE-API.md §3.1-3.2): the console's request shapes
(TS/segment.ts, UI/segment/button_upsert.tsx), validated against Notifuse's Segment shape."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact
from contacts.tests.notifuse_shapes import CONSOLE_SPENT_1000_TREE, assert_error, assert_segment
from events_platform.workspaces.models import Workspace
from segments.models import NAMED_COLORS, Segment
from segments.tests.api_helpers import CaptureOnCommit, get, post, purchase, store

SPENT_1000 = CONSOLE_SPENT_1000_TREE


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    """ann and dan spent over 1000, bob 400; eve only exists."""
    store(
        workspace.id,
        [
            purchase("ann@x.io", "o1", "1100"),
            purchase("bob@x.io", "o2", "400"),
            purchase("dan@x.io", "o3", "1200", days_ago=100),
        ],
    )
    Contact.objects.create(workspace=workspace, email="eve@x.io")
    return workspace


def console_create(client: APIClient, capture: CaptureOnCommit, slug: str, **overrides: Any) -> Any:
    """segments.create exactly as the console sends it: all six keys, colour "blue" by default."""
    body = {"workspace_id": "acme", "id": slug, "name": slug.title(), "color": "blue", "tree": SPENT_1000}
    return post(client, "segments.create", body | {"timezone": "Europe/Paris"} | overrides, capture)


def test_create_with_the_console_s_default_colour_blue(
    shop: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A segment created with color "blue" is a 201 in Notifuse's shape (building, version 1,
    users_count 0); once built, get shows it active with its users_count."""
    # when
    response = console_create(api_client, django_capture_on_commit_callbacks, "big_spenders")
    fetched = get(api_client, "segments.get", {"workspace_id": "acme", "id": "big_spenders"})
    # then
    assert response.status_code == 201, response.content
    created = response.json()["segment"]
    assert_segment(created)
    assert (created["status"], created["version"], created["users_count"]) == ("building", 1, 0)
    assert created["color"] == NAMED_COLORS["blue"] == "#1677ff"
    segment = fetched.json()["segment"]
    assert_segment(segment)
    assert (segment["status"], segment["users_count"], segment["timezone"]) == ("active", 2, "Europe/Paris")


@pytest.mark.parametrize("color", [*NAMED_COLORS, "Blue", "#ABCDEF"])
def test_every_console_colour_and_any_hex_is_accepted(
    workspace: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit, color: str
) -> None:
    """The console's antd preset names (any case) are stored as their hex; a hex stays as sent."""
    # when
    response = console_create(api_client, django_capture_on_commit_callbacks, "s", color=color)
    # then
    assert response.status_code == 201, response.content
    assert response.json()["segment"]["color"] == NAMED_COLORS.get(color.lower(), color)


def test_a_colour_that_is_neither_a_name_nor_hex_is_a_400(
    workspace: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Free text we cannot draw is a 400 naming color (Notifuse stores any text: a deliberate difference)."""
    # when
    response = console_create(api_client, django_capture_on_commit_callbacks, "s", color="sky")
    # then
    assert_error(response, 400)
    assert list(response.json()["details"]) == ["color"]
    assert not Segment.objects.exists()


def test_list_and_update_answer_notifuse_segments(
    shop: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """segments.list (with_count=true, as the console asks) and a full-replacement update keep the shape."""
    # given
    console_create(api_client, django_capture_on_commit_callbacks, "big")
    # when
    listed = get(api_client, "segments.list", {"workspace_id": "acme", "with_count": "true"})
    body = {"workspace_id": "acme", "id": "big", "name": "Big", "color": "green", "tree": SPENT_1000, "timezone": "UTC"}
    updated = post(api_client, "segments.update", body, django_capture_on_commit_callbacks)
    # then
    (segment,) = listed.json()["segments"]
    assert_segment(segment)
    assert segment["users_count"] == 2
    assert updated.status_code == 200, updated.content
    assert_segment(updated.json()["segment"])
    assert updated.json()["segment"]["color"] == NAMED_COLORS["green"]


def test_a_failed_build_shows_as_active_with_its_error(
    shop: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """status is only ever building, active or deleted; our failed state is active plus last_error."""
    # given
    console_create(api_client, django_capture_on_commit_callbacks, "big")
    Segment.objects.filter(slug="big").update(status=Segment.Status.FAILED, last_error="timed out")
    # when
    segment = get(api_client, "segments.get", {"workspace_id": "acme", "id": "big"}).json()["segment"]
    # then
    assert_segment(segment)
    assert (segment["status"], segment["build_state"], segment["last_error"]) == ("active", "failed", "timed out")


def test_rebuild_takes_segment_id_and_answers_success(
    shop: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """rebuild {workspace_id, segment_id} is a 200 {"success": true, "message"}; without segment_id a 400;
    an unknown one a 404."""
    # given
    console_create(api_client, django_capture_on_commit_callbacks, "big")
    # when
    response = post(
        api_client,
        "segments.rebuild",
        {"workspace_id": "acme", "segment_id": "big"},
        django_capture_on_commit_callbacks,
    )
    missing = post(api_client, "segments.rebuild", {"workspace_id": "acme"}, django_capture_on_commit_callbacks)
    unknown = post(
        api_client,
        "segments.rebuild",
        {"workspace_id": "acme", "segment_id": "nope"},
        django_capture_on_commit_callbacks,
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True and isinstance(body["message"], str) and body["message"]
    assert body["segment"]["version"] == 2
    assert_error(missing, 400)
    assert "segment_id" in missing.json()["details"]
    assert_error(unknown, 404)


@pytest.fixture
def buyers(
    workspace: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> list[str]:
    """A built segment "buyers" of 25 members; returns their emails."""
    store(workspace.id, [purchase(f"m{i:02}@x.io", f"o{i}", "1000") for i in range(25)])
    console_create(api_client, django_capture_on_commit_callbacks, "buyers")
    return sorted(f"m{i:02}@x.io" for i in range(25))


def test_contacts_pages_by_offset_with_segment_id(api_client: APIClient, buyers: list[str]) -> None:
    """segments.contacts?segment_id&limit&offset answers {emails, limit, offset}; offset paging reads
    every member once and stops at the first short page."""
    # given
    seen: list[str] = []
    offset = 0
    # when
    while True:
        query = {"workspace_id": "acme", "segment_id": "buyers", "limit": "10", "offset": str(offset)}
        response = get(api_client, "segments.contacts", query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["limit"], body["offset"]) == (10, offset)
        assert all(isinstance(email, str) for email in body["emails"])
        seen += body["emails"]
        if len(body["emails"]) < 10:
            break
        offset += 10
    # then
    assert sorted(seen) == buyers
    assert len(seen) == 25


@pytest.mark.parametrize(("limit", "served"), [("500", 100), ("0", 50), ("ten", 50), (None, 50), ("5", 5)])
def test_contacts_limit_is_read_as_notifuse_reads_it(
    api_client: APIClient, buyers: list[str], limit: str | None, served: int
) -> None:
    """Default 50, served at most 100, a bad value is the default: echoed as the limit used."""
    # given
    query = {"workspace_id": "acme", "segment_id": "buyers"} | ({"limit": limit} if limit is not None else {})
    # when
    body = get(api_client, "segments.contacts", query).json()
    # then
    assert body["limit"] == served
    assert len(body["emails"]) == min(served, 25)


def test_contacts_of_an_unknown_segment_is_a_404(shop: Workspace, api_client: APIClient) -> None:
    """A segment_id that does not exist is a JSON 404."""
    # when / then
    assert_error(get(api_client, "segments.contacts", {"workspace_id": "acme", "segment_id": "nope"}), 404)


@pytest.mark.parametrize(("limit", "used"), [(100, 100), (0, 10), (None, 10), (500, 20), (-3, 20), (5, 5)])
def test_preview_answers_emails_total_count_and_the_limit_used(
    shop: Workspace,
    api_client: APIClient,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    limit: int | None,
    used: int,
) -> None:
    """The drawer sends {workspace_id, tree, limit: 100} and shows total_count; our counts stay beside."""
    # given
    body: dict[str, Any] = {"workspace_id": "acme", "tree": SPENT_1000}
    if limit is not None:
        body["limit"] = limit
    # when
    response = post(api_client, "segments.preview", body, django_capture_on_commit_callbacks)
    # then
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["total_count"], answer["limit"]) == (2, used)
    assert sorted(answer["emails"]) == ["ann@x.io", "dan@x.io"][: min(used, 2)]
    assert answer["total"] == 2 and answer["conditions"] == [{"index": 0, "count": 2}]


def test_delete_answers_success(
    shop: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """delete {workspace_id, id} is 200 {"success": true}; again (or unknown) a JSON 404."""
    # given
    console_create(api_client, django_capture_on_commit_callbacks, "big")
    # when
    response = post(
        api_client, "segments.delete", {"workspace_id": "acme", "id": "big"}, django_capture_on_commit_callbacks
    )
    again = post(
        api_client, "segments.delete", {"workspace_id": "acme", "id": "big"}, django_capture_on_commit_callbacks
    )
    # then
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert_error(again, 404)
