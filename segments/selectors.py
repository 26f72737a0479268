"""Reads for segments: which contacts a rule tree matches, each answer in one SQL statement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from contacts.models import Contact
from segments.models import Segment
from segments.rules import compile_tree, referenced_segments, validate_tree


def segment_pks_for_slugs(*, workspace_id: str, slugs: Iterable[str]) -> dict[str, int]:
    """Primary keys of the workspace's (not deleted) segments with these slugs; unknown slugs are left out."""
    slugs = set(slugs)
    if not slugs:
        return {}
    rows = (
        Segment.objects.filter(workspace_id=workspace_id, slug__in=slugs)
        .exclude(status=Segment.Status.DELETED)
        .values_list("slug", "pk")
    )
    return dict(rows)


def segment_matching_contacts(
    *,
    workspace_id: str,
    tree: dict[str, Any],
    timezone_name: str,
    now: dt.datetime | None = None,
    contact_ids: Iterable[int] | None = None,
    segment_pks: Mapping[str, int] | None = None,
) -> QuerySet[Contact]:
    """The workspace's contacts matching ``tree`` (or the matching subset of ``contact_ids``).

    Evaluating the queryset is one statement. When the tree refers to other segments and
    ``segment_pks`` is not given, their slugs are resolved first (one more query); an unknown
    slug raises ``TreeValidationError``.
    """
    tree = validate_tree(tree)
    if segment_pks is None:
        segment_pks = segment_pks_for_slugs(workspace_id=workspace_id, slugs=referenced_segments(tree))
    condition = compile_tree(
        tree,
        workspace_id=workspace_id,
        now=now or timezone.now(),
        timezone_name=timezone_name,
        segment_pks=segment_pks,
    )
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    if contact_ids is not None:
        contacts = contacts.filter(pk__in=list(contact_ids))
    return contacts.filter(condition)


def segment_match_count(
    *,
    workspace_id: str,
    tree: dict[str, Any],
    timezone_name: str,
    now: dt.datetime | None = None,
    contact_ids: Iterable[int] | None = None,
    segment_pks: Mapping[str, int] | None = None,
) -> int:
    """How many contacts ``tree`` matches (one ``COUNT`` statement; see ``segment_matching_contacts``)."""
    return segment_matching_contacts(
        workspace_id=workspace_id,
        tree=tree,
        timezone_name=timezone_name,
        now=now,
        contact_ids=contact_ids,
        segment_pks=segment_pks,
    ).count()
