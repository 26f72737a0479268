"""Every segments endpoint: 401 without a key, 403 for another workspace (existing or not, nothing
read or written), and a segment of another workspace is invisible."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import TimelineEntry
from events_platform.workspaces.models import Workspace
from segments import services
from segments.models import Segment, SegmentMembership
from segments.tests.api_helpers import CaptureOnCommit, purchase, store
from segments.tests.trees import all_of, goal_leaf, segment_leaf

TREE = all_of(goal_leaf("sum", "gte", 100))

# (method, path, payload without workspace_id) of every segments endpoint, aimed at segment "big".
Endpoint = tuple[str, str, dict[str, Any]]
ENDPOINTS: list[Endpoint] = [
    ("post", "segments.create", {"id": "new", "name": "New", "tree": TREE}),
    ("post", "segments.update", {"id": "big", "name": "Renamed"}),
    ("post", "segments.delete", {"id": "big"}),
    ("post", "segments.rebuild", {"id": "big"}),
    ("get", "segments.get", {"id": "big"}),
    ("get", "segments.list", {}),
    ("post", "segments.preview", {"tree": TREE}),
    ("get", "segments.contacts", {"id": "big"}),
    ("get", "segments.export", {"id": "big"}),
    ("get", "segments.explain", {"segment_id": "big", "email": "ann@x.io"}),
    ("get", "segments.templates", {}),
    ("get", "contacts.get", {"email": "ann@x.io"}),
]
ENDPOINT_IDS = [path for _, path, _ in ENDPOINTS]
# Endpoints that name one segment: with another workspace's segment id they must answer 404.
BY_SEGMENT = [endpoint for endpoint in ENDPOINTS if "id" in endpoint[2] and endpoint[1] != "segments.create"]
BY_SEGMENT += [("get", "segments.explain", {"segment_id": "big", "email": "ann@x.io"})]


def call(client: APIClient, method: str, path: str, payload: dict[str, Any], workspace_id: str | None) -> Any:
    data = dict(payload) if workspace_id is None else {"workspace_id": workspace_id, **payload}
    if method == "post":
        return client.post(f"/api/{path}", data, format="json")
    return client.get(f"/api/{path}", data)


def state() -> dict[str, Any]:
    """Everything a segments request could change."""
    return {
        "segments": sorted(
            Segment.objects.values_list("workspace_id", "slug", "name", "version", "status", "member_count")
        ),
        "memberships": SegmentMembership.objects.count(),
        "timeline": TimelineEntry.objects.count(),
    }


@pytest.fixture
def big_in_both(
    workspace: Workspace, other_workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Segment ``big`` with member ann, built in acme; segment ``big`` with member ann in globex too."""
    with django_capture_on_commit_callbacks(execute=True):
        for ws in (workspace, other_workspace):
            store(ws.id, [purchase("ann@x.io", f"{ws.id}_o1", "500")])
            services.segment_create(workspace_id=ws.id, slug="big", name="Big", tree=TREE)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_request_without_a_key_is_a_401(big_in_both: None, endpoint: Endpoint) -> None:
    """No Authorization header: 401 in the error format with a Bearer challenge; nothing written."""
    # given
    before = state()

    # when
    response = call(APIClient(), *endpoint, "acme")

    # then
    assert response.status_code == 401, response.content
    assert set(response.json()) == {"error", "details"}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize("workspace_id", ["globex", "nowhere"])
def test_another_workspace_is_a_403_whether_it_exists_or_not(
    big_in_both: None,
    api_client: APIClient,
    workspace_id: str,
    endpoint: Endpoint,
) -> None:
    """acme's key naming globex (which exists) or nowhere (which does not) gets the same 403; nothing written."""
    # given
    before = state()

    # when
    response = call(api_client, *endpoint, workspace_id)

    # then
    assert response.status_code == 403, response.content
    assert response.json() == {
        "error": f"Your credentials do not grant access to workspace '{workspace_id}'.",
        "details": {},
    }
    assert state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_missing_workspace_id_is_a_400(big_in_both: None, api_client: APIClient, endpoint: Endpoint) -> None:
    """Without workspace_id every endpoint answers 400 naming it."""
    # when
    response = call(api_client, *endpoint, None)

    # then
    assert response.status_code == 400, response.content
    assert list(response.json()["details"]) == ["workspace_id"]


@pytest.mark.parametrize(
    "endpoint",
    [
        (m, p, {**body, "id": "only_b"} if "id" in body else {**body, "segment_id": "only_b"})
        for m, p, body in BY_SEGMENT
    ],
    ids=[p for _, p, _ in BY_SEGMENT],
)
def test_a_segment_of_another_workspace_is_a_404(
    big_in_both: None,
    other_workspace: Workspace,
    api_client: APIClient,
    endpoint: Endpoint,
) -> None:
    """globex's segment ``only_b`` does not exist for acme's key: 404, and globex's data is untouched."""
    # given
    services.segment_create(workspace_id=other_workspace.id, slug="only_b", name="Only B", tree=TREE)
    before = state()

    # when
    response = call(api_client, *endpoint, "acme")

    # then
    assert response.status_code == 404, response.content
    assert set(response.json()) == {"error", "details"}
    assert state() == before


def test_list_preview_and_members_see_only_their_workspace(
    big_in_both: None, other_workspace: Workspace, api_client: APIClient, other_api_client: APIClient
) -> None:
    """Same slug in two workspaces: each key lists, counts and pages only its own."""
    # given
    store(other_workspace.id, [purchase("bob@x.io", "b1", "900")])
    services.segment_create(workspace_id=other_workspace.id, slug="only_b", name="Only B", tree=TREE)

    # when
    acme_list = call(api_client, "get", "segments.list", {}, "acme").json()["segments"]
    globex_list = call(other_api_client, "get", "segments.list", {}, "globex").json()["segments"]
    acme_preview = call(api_client, "post", "segments.preview", {"tree": TREE}, "acme").json()
    globex_preview = call(other_api_client, "post", "segments.preview", {"tree": TREE}, "globex").json()
    acme_members = call(api_client, "get", "segments.contacts", {"id": "big"}, "acme").json()["contacts"]
    using_b = call(api_client, "post", "segments.preview", {"tree": all_of(segment_leaf("only_b"))}, "acme")

    # then
    assert [(s["id"], s["workspace_id"]) for s in acme_list] == [("big", "acme")]
    assert sorted((s["id"], s["workspace_id"]) for s in globex_list) == [("big", "globex"), ("only_b", "globex")]
    assert (acme_preview["total"], acme_preview["contacts_in_workspace"]) == (1, 1)
    assert (globex_preview["total"], globex_preview["contacts_in_workspace"]) == (2, 2)
    assert [c["email"] for c in acme_members] == ["ann@x.io"]
    assert {c["id"] for c in acme_members} == set(
        SegmentMembership.objects.filter(segment__workspace_id="acme").values_list("contact_id", flat=True)
    )
    assert using_b.status_code == 400


def test_deleting_a_segment_leaves_the_same_id_in_another_workspace_alone(
    big_in_both: None,
    api_client: APIClient,
    other_api_client: APIClient,
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    """acme deleting its ``big`` does not touch globex's ``big`` nor its members."""
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = call(api_client, "post", "segments.delete", {"id": "big"}, "acme")

    # then
    assert response.status_code == 200
    globex_big = call(other_api_client, "get", "segments.get", {"id": "big"}, "globex").json()["segment"]
    assert (globex_big["status"], globex_big["member_count"]) == ("active", 1)
    assert SegmentMembership.objects.filter(segment__workspace_id="globex").count() == 1
