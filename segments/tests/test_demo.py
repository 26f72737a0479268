"""``make run``'s demo workspace opens with the three template segments already built and one RFM
model computed."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from rfm.models import RfmModel, RfmScore
from segments import rules, selectors
from segments.models import Segment, SegmentMembership

pytestmark = pytest.mark.django_db


def demo_setup(tmp_path: Path, **options: Any) -> str:
    err = StringIO()
    call_command(
        "demo_setup", credentials_file=tmp_path / ".demo-credentials", stdout=StringIO(), stderr=err, **options
    )
    return err.getvalue()


def test_demo_workspace_opens_with_the_template_segments_built(
    tmp_path: Path, settings: Any, django_user_model: Any
) -> None:
    """After demo_setup the demo workspace has one segment per template, each built: its members
    are exactly the contacts its tree matches now, and every template has some; the dashboard lists
    them instead of "No segments yet"; a second run adds nothing."""
    # given
    settings.DEBUG = True

    # when
    summary = demo_setup(tmp_path, contacts=300, events=3000)

    # then
    segments = {segment.slug: segment for segment in Segment.objects.live().filter(workspace_id="demo")}
    assert set(segments) == set(rules.TEMPLATES)
    for slug, segment in segments.items():
        members = set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))
        matching = selectors.segment_matching_contacts(
            workspace_id="demo", tree=segment.tree, timezone_name=segment.timezone
        )
        assert segment.status == Segment.Status.ACTIVE and segment.last_built_at is not None
        assert members == set(matching.values_list("pk", flat=True)) and members, slug
        assert segment.member_count == len(members)
        assert f"{segment.name} ({segment.member_count})" in summary
    client = Client()
    client.force_login(django_user_model.objects.get(username="admin"))
    page = client.get("/").content.decode()
    assert "No segments yet" not in page and all(f"/segments/{slug}/" in page for slug in segments)
    # and one RFM model, computed: every contact scored, its group sizes on the dashboard
    model = RfmModel.objects.get(workspace_id="demo")
    assert model.status == RfmModel.Status.ACTIVE and model.last_computed_at is not None
    assert RfmScore.objects.filter(model=model).count() == 300 and model.population > 0
    assert f"RFM model “{model.name}”: {model.population} customers scored" in summary
    assert 'data-testid="dashboard-rfm"' in page and "/rfm/default/" in page

    # and when run again, nothing is added or rebuilt
    built = {slug: segment.last_built_at for slug, segment in segments.items()}
    assert demo_setup(tmp_path) == ""
    assert {s.slug: s.last_built_at for s in Segment.objects.filter(workspace_id="demo")} == built
    assert RfmModel.objects.get(workspace_id="demo").last_computed_at == model.last_computed_at
