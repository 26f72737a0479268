"""Segment templates from RFM groups: one per group of each RFM model of the workspace, in the
builder's "Start from a template" list, in ``segments.templates`` and usable by
``segments.create``; a segment made from one holds exactly the contacts of that group."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from events_platform.workspaces.models import Workspace
from rfm import groups, services
from rfm.models import RfmModel, RfmScore
from rfm.tests.conftest import store_small_shop
from segments import rules
from segments.models import Segment
from segments.tests.api_helpers import CaptureOnCommit, get, member_emails, post
from segments.tests.test_views import BUILDER_MAX_QUERIES

pytestmark = pytest.mark.django_db

CLASSIC = {
    "scale": 5,
    "recency": {"mode": "quantile"},
    "frequency": {"mode": "quantile"},
    "monetary": {"mode": "quantile"},
    "group_map": "classic11",
}


def scored_shop(workspace: Workspace) -> RfmModel:
    """24 customers with 1 to 4 orders from 2 to 500 days ago, 2 contacts who never bought, and the
    Klaviyo preset ``default`` computed over them."""
    store_small_shop(workspace, timezone.now())
    model = services.rfm_model_create(
        workspace_id=workspace.id, slug="default", name="Purchases", settings={"preset": "klaviyo"}
    )
    assert services.rfm_model_compute(model_pk=model.pk) is not None
    model.refresh_from_db()
    return model


def group_keys(model: RfmModel) -> list[str]:
    return [f"rfm:{model.slug}:{group}" for group in groups.groups_of(model.group_map, model.scale)]


def test_the_builder_offers_one_template_per_group_of_each_model(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """Besides the seed's three, each live RFM model gives one template per group of its map (then
    prospect and lapsed), named by the group's display name; a deleted model gives none; the
    builder still costs a fixed number of queries."""
    # given a Klaviyo model, a classic11 model and a deleted one
    klaviyo = services.rfm_model_create(
        workspace_id=workspace.id, slug="default", name="Purchases", settings={"preset": "klaviyo"}
    )
    classic = services.rfm_model_create(workspace_id=workspace.id, slug="classic", name="Classic", settings=CLASSIC)
    gone = services.rfm_model_create(workspace_id=workspace.id, slug="gone", name="Gone", settings=CLASSIC)
    services.rfm_model_delete(model=gone)

    # when
    with django_assert_max_num_queries(BUILDER_MAX_QUERIES):
        response = member_client.get("/segments/new-segment/")

    # then
    page = response.content.decode()
    offered = response.context["templates"]
    assert [key for key, _, _ in offered] == [*rules.TEMPLATES, *group_keys(classic), *group_keys(klaviyo)]
    assert len(group_keys(klaviyo)) == 6 + 2 and len(group_keys(classic)) == 11 + 2
    for key in group_keys(klaviyo) + group_keys(classic):
        assert f'value="template:{key}"' in page
    names = {key: name for key, name, _ in offered}
    assert names["rfm:default:needs_attention"] == "Needs attention"
    assert names["rfm:classic:cant_lose"] == "Can't lose them"
    assert "rfm:gone:champions" not in names


def test_a_group_template_loads_its_condition_name_and_id_then_saves_that_group(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """One click on a group's template loads ``group in [g]`` on that model, the group's name and
    an id; saved, the segment's members are exactly the contacts the model put in that group."""
    # given
    model = scored_shop(workspace)
    group, size = Counter(
        RfmScore.objects.filter(model=model, r__isnull=False).values_list("group", flat=True)
    ).most_common(1)[0]

    # when the template button is pressed (htmx)
    response = member_client.post(
        "/segments/new-segment/", {"op": f"template:rfm:default:{group}"}, headers={"HX-Request": "true"}
    )

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert f'value="{groups.display_name(group)}"' in page and f'value="default_{group}"' in page
    assert '<option value="rfm" selected>' in page
    assert f'name="n.0.values" value="{group}"' in page

    # when saved as it stands
    with django_capture_on_commit_callbacks(execute=True):
        saved = member_client.post(
            "/segments/new-segment/",
            {
                "op": "save",
                "name": groups.display_name(group),
                "slug": f"default_{group}",
                "color": "#059669",
                "timezone": "UTC",
                "n.kind": "branch",
                "n.operator": "and",
                "n.0.kind": "leaf",
                "n.0.source": "rfm",
                "n.0.model": "default",
                "n.0.field": "group",
                "n.0.operator": "in",
                "n.0.values": group,
            },
        )

    # then
    assert saved.status_code == 302, saved.content.decode()[:2000]
    segment = Segment.objects.get(workspace=workspace, slug=f"default_{group}")
    assert segment.tree == rules.validate_tree(rules.rfm_group_templates([model])[f"rfm:default:{group}"]["tree"])
    expected = set(RfmScore.objects.filter(model=model, group=group).values_list("contact__email", flat=True))
    assert len(expected) == size and member_emails(workspace.id, segment.slug) == expected


def test_segments_templates_lists_the_groups_and_create_builds_one(
    workspace: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """segments.templates lists the seed's three then one per group of the model, each with its
    tree; segments.create with a group's template makes that group's segment, built."""
    # given
    model = scored_shop(workspace)

    # when
    listed = get(api_client, "segments.templates", {"workspace_id": workspace.id})
    created = post(
        api_client,
        "segments.create",
        {"workspace_id": workspace.id, "id": "sleepers", "template": "rfm:default:at_risk"},
        django_capture_on_commit_callbacks,
    )

    # then
    assert listed.status_code == 200
    templates = {template["id"]: template for template in listed.json()["templates"]}
    assert list(templates) == [*rules.TEMPLATES, *group_keys(model)]
    leaf = {"source": "rfm", "rfm": {"model": "default", "field": "group", "operator": "in", "values": ["at_risk"]}}
    assert templates["rfm:default:at_risk"]["tree"] == {
        "kind": "branch",
        "branch": {"operator": "and", "leaves": [{"kind": "leaf", "leaf": leaf}]},
    }
    assert templates["rfm:default:at_risk"]["name"] == "At risk"
    assert created.status_code == 201, created.content
    body = created.json()["segment"]
    assert (body["name"], body["color"]) == ("At risk", rules.templates.GROUP_COLORS["at_risk"])
    expected = set(RfmScore.objects.filter(model=model, group="at_risk").values_list("contact__email", flat=True))
    assert expected and member_emails(workspace.id, "sleepers") == expected


# A group the Klaviyo map lacks, a model the workspace lacks, a malformed id, a deleted model's group.
NO_SUCH_TEMPLATES = ("rfm:default:potential_loyalist", "rfm:other:champions", "rfm:default", "rfm:gone:champions")


@pytest.mark.parametrize("template", NO_SUCH_TEMPLATES)
def test_a_template_of_no_group_of_a_live_model_is_a_400_naming_template(
    workspace: Workspace, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit, template: str
) -> None:
    """A group the model's map does not have, a model the workspace does not have (or deleted) and
    a malformed id are refused naming ``template``; nothing is written."""
    # given a Klaviyo model (no potential_loyalist) and a deleted classic11 one
    services.rfm_model_create(
        workspace_id=workspace.id, slug="default", name="Purchases", settings={"preset": "klaviyo"}
    )
    gone = services.rfm_model_create(workspace_id=workspace.id, slug="gone", name="Gone", settings=CLASSIC)
    services.rfm_model_delete(model=gone)

    # when
    response = post(
        api_client,
        "segments.create",
        {"workspace_id": workspace.id, "id": "nope", "template": template},
        django_capture_on_commit_callbacks,
    )

    # then
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["template"]
    assert not Segment.objects.filter(workspace=workspace).exists()
