"""Facts about a validated tree that callers need without compiling it: its leaves (with the
validator path of each), the segments it refers to, whether time alone changes its members."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .vocabulary import CONTACT_OPERATORS_BY_NAME, RELATIVE_TIMEFRAME_OPERATORS, SOURCE_KEYS


def iter_leaves(node: dict[str, Any], path: str = "tree") -> Iterator[tuple[dict[str, Any], str, bool]]:
    """Every leaf, depth first, as ``(leaf, path, negated)``: ``path`` is the one validation
    errors use (``tree.branch.leaves[1]``), ``negated`` the leaf node's own ``negate``."""
    if node["kind"] == "branch":
        for index, child in enumerate(node["branch"]["leaves"]):
            yield from iter_leaves(child, f"{path}.branch.leaves[{index}]")
    else:
        yield node["leaf"], path, bool(node.get("negate"))


def referenced_segments(tree: dict[str, Any]) -> set[str]:
    """Slugs of the segments a (validated) tree refers to."""
    return {leaf["segment"]["segment_id"] for leaf, _, _ in iter_leaves(tree) if leaf["source"] == "segment"}


def referenced_rfm_models(tree: dict[str, Any]) -> set[str]:
    """Ids of the RFM models a (validated) tree reads scores of."""
    return {leaf["rfm"]["model"] for leaf, _, _ in iter_leaves(tree) if leaf["source"] == "rfm"}


def has_relative_timeframe(tree: dict[str, Any]) -> bool:
    """Whether membership can change with time alone (so the segment needs scheduled rebuilds)."""
    for leaf, _, _ in iter_leaves(tree):
        body = leaf[SOURCE_KEYS[leaf["source"]]]
        if body.get("timeframe_operator") in RELATIVE_TIMEFRAME_OPERATORS:
            return True
        if leaf["source"] == "contacts" and "filters" in body:
            if any(item["operator"] == "in_the_last_days" for item in body["filters"]):
                return True
        elif leaf["source"] == "contacts" and CONTACT_OPERATORS_BY_NAME[body["operator"]].takes == "days":
            return True
    return False
