"""Query-count pins: the segments endpoints cost a fixed number of statements, however many rows."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from events_platform.workspaces.models import Workspace
from segments import services
from segments.models import Segment
from segments.tests.api_helpers import CaptureOnCommit, purchase, store
from segments.tests.trees import all_of, any_of, goal_leaf, segment_leaf

# Every request pays 2 for authentication (the key, then the workspace check); the key's
# last-use write happens at most once a minute, so a warm-up request takes it out of the
# counts. The rest is the endpoint's own reads. Pinned exactly: a new query must be a
# deliberate change.
EVERYONE = all_of(goal_leaf("count", "gte", 0))


@pytest.fixture(autouse=True)
def _key_last_use_written(workspace: Workspace, api_client: APIClient) -> None:
    assert api_client.get("/api/segments.list", {"workspace_id": workspace.id}).status_code == 200


def queries_for(client: APIClient, method: str, path: str, data: dict[str, Any]) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as captured:
        if method == "post":
            response = client.post(f"/api/{path}", data, format="json")
        else:
            response = client.get(f"/api/{path}", data)
            if isinstance(response, StreamingHttpResponse):
                # Consume the stream inside the capture, and keep its bytes for the caller.
                response.streaming_content = [response.getvalue()]
    assert response.status_code == 200, response.content
    return len(captured), response


def buyers(workspace: Workspace, start: int, stop: int) -> None:
    store(workspace.id, [purchase(f"c{i:03}@x.io", f"o{i}", str(10 + i)) for i in range(start, stop)])


def test_list_costs_the_same_for_3_and_30_segments(
    workspace: Workspace, api_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    """segments.list reads all segments in one statement: 30 segments cost what 3 do."""
    # given
    for i in range(3):
        services.segment_create(workspace_id=workspace.id, slug=f"s{i:02}", name=f"S{i:02}", tree=EVERYONE)
    few, _ = queries_for(api_client, "get", "segments.list", {"workspace_id": "acme"})
    for i in range(3, 30):
        services.segment_create(workspace_id=workspace.id, slug=f"s{i:02}", name=f"S{i:02}", tree=EVERYONE)

    # when
    with django_assert_max_num_queries(3):
        many, response = queries_for(api_client, "get", "segments.list", {"workspace_id": "acme"})

    # then
    assert len(response.json()["segments"]) == 30
    assert many == few


def test_contacts_costs_the_same_for_3_and_30_members(
    workspace: Workspace,
    api_client: APIClient,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    django_assert_max_num_queries: Any,
) -> None:
    """segments.contacts loads members with their contacts in one statement, however many."""
    # given
    tree = all_of(goal_leaf("count", "gte", 1))
    buyers(workspace, 0, 3)
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(workspace_id=workspace.id, slug="buyers", name="Buyers", tree=tree)
    params = {"workspace_id": "acme", "id": "buyers", "limit": 100}
    few, _ = queries_for(api_client, "get", "segments.contacts", params)
    buyers(workspace, 3, 30)
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_rebuild(segment=segment)

    # when
    with django_assert_max_num_queries(4):
        many, response = queries_for(api_client, "get", "segments.contacts", params)

    # then
    assert len(response.json()["contacts"]) == 30
    assert many == few


def test_export_costs_the_same_for_3_and_30_members(
    workspace: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """segments.export streams members from one statement (per chunk), not one per row."""
    # given
    buyers(workspace, 0, 3)
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(
            workspace_id=workspace.id, slug="buyers", name="Buyers", tree=all_of(goal_leaf("count", "gte", 1))
        )
    params = {"workspace_id": "acme", "id": "buyers"}
    few, _ = queries_for(api_client, "get", "segments.export", params)
    buyers(workspace, 3, 30)
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_rebuild(segment=segment)

    # when
    many, response = queries_for(api_client, "get", "segments.export", params)

    # then
    assert len(response.getvalue().splitlines()) == 1 + 30
    assert many == few <= 4


@pytest.mark.parametrize(
    "tree",
    [
        all_of(goal_leaf("sum", "gte", 15), goal_leaf("count", "gte", 1, timeframe="in_the_last_days", days=30)),
        any_of(goal_leaf("max", "gt", 20), all_of(segment_leaf("big")), goal_leaf("avg", "lt", 12, negate=True)),
    ],
    ids=["goals", "segment-and-nested"],
)
def test_preview_costs_the_same_for_3_and_30_contacts(
    workspace: Workspace,
    api_client: APIClient,
    django_assert_max_num_queries: Any,
    tree: dict[str, Any],
) -> None:
    """segments.preview: one aggregate for all counts and one for the sample, whatever the data."""
    # given
    Segment.objects.create(workspace=workspace, slug="big", name="Big", tree=EVERYONE, status="active")
    body = {"workspace_id": "acme", "tree": tree}
    buyers(workspace, 0, 3)
    few, _ = queries_for(api_client, "post", "segments.preview", body)
    buyers(workspace, 3, 30)

    # when
    # The segment leaf costs one more read: its slug resolved to a primary key.
    with django_assert_max_num_queries(5):
        many, response = queries_for(api_client, "post", "segments.preview", body)

    # then
    assert response.json()["contacts_in_workspace"] == 30
    assert many == few


def test_contacts_get_costs_the_same_for_1_and_10_segments(
    workspace: Workspace,
    api_client: APIClient,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    django_assert_max_num_queries: Any,
) -> None:
    """contacts.get adds one statement for the contact's segments, however many there are (and,
    since RFM, one for the workspace's RFM models: their scores are one more only when a model
    exists)."""
    # given
    buyers(workspace, 0, 1)
    params = {"workspace_id": "acme", "email": "c000@x.io"}
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_create(workspace_id=workspace.id, slug="s0", name="S0", tree=EVERYONE)
    few, _ = queries_for(api_client, "get", "contacts.get", params)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(1, 10):
            services.segment_create(workspace_id=workspace.id, slug=f"s{i}", name=f"S{i}", tree=EVERYONE)

    # when
    with django_assert_max_num_queries(5):
        many, response = queries_for(api_client, "get", "contacts.get", params)

    # then
    assert len(response.json()["contact"]["segments"]) == 10
    assert many == few
