"""The one cursor format: what it round-trips, and that anything else is one error, a 400 at ``cursor``."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from events_platform.pagination import InvalidCursor, decode_cursor, encode_cursor


def token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "key",
    [datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), Decimal("-1234.50"), 42, 0, None],
)
def test_a_cursor_gives_back_exactly_the_key_and_id_it_was_made_of(key: object) -> None:
    """Instants (to the microsecond), decimals (to the cent), integers and NULL keys survive the trip."""
    # when
    cursor = encode_cursor(key, 2**62)
    # then
    assert decode_cursor(cursor) == (key, 2**62)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "_w",  # not UTF-8
        token(["2026-03-01T12:00:00+00:00", 1]),  # the older two-part format
        token(["t", "2026-03-01T12:00:00+00:00", True]),  # a boolean is not an id
        token(["t", "2026-03-01T12:00:00+00:00", 2**63]),  # beyond a bigint
        token(["i", 2**64, 1]),
        token(["d", "NaN", 1]),
        token(["d", 5, 1]),
        token(["t", "not a date", 1]),
        token(["x", "1", 1]),
        token([None, "1", 1]),
        "W" * 600,  # longer than any cursor we make
        base64.urlsafe_b64encode(b"[" * 200 + b"]" * 200).decode(),  # deeply nested
    ],
)
def test_a_cursor_we_did_not_make_is_an_invalid_cursor_at_the_cursor_field(cursor: str) -> None:
    """Every malformed cursor raises the one InvalidCursor, a ValidationError naming ``cursor``."""
    # when
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(cursor)
    # then
    assert isinstance(caught.value, ValidationError)
    assert list(caught.value.message_dict) == ["cursor"]
