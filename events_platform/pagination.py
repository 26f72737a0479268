"""Keyset (cursor) pagination for every list, API and pages alike: one cursor format, one error.

A cursor is an opaque url-safe token holding the sort key and the primary key of a row at a
page's edge; the next page starts strictly after it (the previous one strictly before it), so
pages stay fast and stable however deep they go. The token is base64 (url-safe, unpadded) of
the JSON ``[tag, value, pk]``, the tag telling how to read the value back exactly: ``"t"`` an
ISO 8601 instant, ``"d"`` a decimal as text, ``"i"`` an integer, ``null`` a NULL key.

Anything else (garbage, another sort's cursor, a tampered id) raises :class:`InvalidCursor`, a
``ValidationError`` at ``cursor``: the API answers it as its standard 400, pages start again
at the first page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import BooleanField, F, Func, Model, Q, QuerySet, Value
from django.utils.dateparse import parse_datetime

T = TypeVar("T", bound=Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# Cursors we make are well under this; a longer one was not made by us and is not parsed (which
# also keeps any JSON nesting in it far below the parser's recursion limit).
MAX_CURSOR_LENGTH = 512
_BIGINT = 2**63
# Decimal keys are money (14 digits, 2 places); a cursor's decimal beyond 10^±30 was not made by
# us and would overflow the database's numeric (``1e999999``, ``1e-999999``).
_DECIMAL_MAGNITUDE = 30

_TIME_TAG, _DECIMAL_TAG, _INT_TAG = "t", "d", "i"
_CURSOR_TYPES: dict[str, type] = {"DateTimeField": datetime, "DecimalField": Decimal}


class InvalidCursor(ValidationError):
    """The cursor was not made by us, was made for another sort, or was tampered with."""

    def __init__(self, message: str = "cursor is not valid; pass the next_cursor of a previous page") -> None:
        super().__init__({"cursor": [message]})


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows; ``next_cursor`` continues after the last row, ``prev_cursor`` (pages
    that walk both ways) goes back from the first. ``None`` where there is nothing more."""

    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None = None


def encode_cursor(value: object, pk: int) -> str:
    """The cursor of a row whose sort key is ``value`` (an instant, a decimal, an int or None)."""
    tagged: list[object]
    if value is None:
        tagged = [None, None]
    elif isinstance(value, datetime):
        tagged = [_TIME_TAG, value.isoformat()]
    elif isinstance(value, Decimal):
        tagged = [_DECIMAL_TAG, str(value)]
    elif isinstance(value, int):
        tagged = [_INT_TAG, value]
    else:  # pragma: no cover - a sort key of another type is a programming error
        raise TypeError(f"cannot put {type(value).__name__} in a cursor")
    return base64.urlsafe_b64encode(json.dumps([*tagged, pk]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[object, int]:
    """(sort key, primary key) of a cursor made by :func:`encode_cursor`, or ``InvalidCursor``."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, text, pk = json.loads(raw)
        if type(pk) is not int or not -_BIGINT <= pk < _BIGINT:
            raise ValueError
        value: object
        if tag is None and text is None:
            value = None
        elif tag == _TIME_TAG and isinstance(text, str):
            instant = parse_datetime(text)
            if instant is None or instant.tzinfo is None:
                raise ValueError
            value = instant.astimezone(UTC)  # OverflowError (an ArithmeticError) at year 1 or 9999
        elif tag == _DECIMAL_TAG and isinstance(text, str):
            value = Decimal(text)
            if not value.is_finite():
                raise ValueError
            if value.is_zero():
                value = Decimal(0)
            elif not -_DECIMAL_MAGNITUDE < value.adjusted() < _DECIMAL_MAGNITUDE:
                raise ValueError
        elif tag == _INT_TAG and type(text) is int and -_BIGINT <= text < _BIGINT:
            value = text
        else:
            raise ValueError
    except (ValueError, TypeError, ArithmeticError, binascii.Error) as exc:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise InvalidCursor() from exc
    return value, pk


class _RowBeyond(Func):
    """``(key, tiebreak) < (value, pk)`` (``>`` ascending) as one row comparison.

    PostgreSQL reads a row comparison over consecutive index columns as one index range that
    starts at the cursor, so a page deep in the list, or inside a long run of equal keys,
    costs what the first page costs; the equivalent OR it can only filter row by row from
    the top of the index. SQLite compares row values the same way. NULL keys never match.
    """

    output_field = BooleanField()

    def __init__(self, key: str, tiebreak: str, value: object, pk: int, *, descending: bool) -> None:
        super().__init__(F(key), F(tiebreak), Value(value), Value(pk))
        self.operator = "<" if descending else ">"

    def as_sql(self, compiler: Any, connection: Any, *_template: Any, **extra_context: Any) -> tuple[str, list[Any]]:
        # Writes its own SQL: Func.as_sql's template arguments (*_template) do not apply.
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        key, tiebreak, value, pk = parts
        return f"({key}, {tiebreak}) {self.operator} ({value}, {pk})", params


def _key_type(queryset: QuerySet[Any], key: str) -> type:
    """The Python type a cursor's key must have: a cursor of another sort is refused up front."""
    annotation = queryset.query.annotations.get(key)
    field = annotation.output_field if annotation is not None else queryset.model._meta.get_field(key)
    return _CURSOR_TYPES.get(field.get_internal_type(), int)


def _ranges_after(
    key: str, tiebreak: str, cursor: tuple[object, int] | None, *, descending: bool, nullable: bool
) -> list[Q | Func]:
    """The rows after ``cursor`` in the order (key, tiebreak), as index ranges in reading order.

    A nullable key sorts NULL as the smallest value: last when descending, first when
    ascending. Rows after a cursor may then span two ranges (the rest of the non-NULL keys
    and the NULL run, or the reverse), each read in index order and only as far as needed.
    """
    if cursor is None:
        return [Q()]
    value, pk = cursor
    if value is None:
        rest = Q(**{f"{key}__isnull": True, f"{tiebreak}__{'lt' if descending else 'gt'}": pk})
        return [rest] if descending else [rest, Q(**{f"{key}__isnull": False})]
    beyond = _RowBeyond(key, tiebreak, value, pk, descending=descending)
    return [beyond, Q(**{f"{key}__isnull": True})] if descending and nullable else [beyond]


def _ordered(queryset: QuerySet[T], key: str, tiebreak: str, *, descending: bool, nullable: bool) -> QuerySet[T]:
    # NULLS FIRST/LAST only where NULLs can occur: spelled out on a NOT NULL column it would
    # stop PostgreSQL from reading a (…, -key, -id) index in order.
    if descending:
        return queryset.order_by(F(key).desc(nulls_last=True) if nullable else F(key).desc(), F(tiebreak).desc())
    return queryset.order_by(F(key).asc(nulls_first=True) if nullable else F(key).asc(), F(tiebreak).asc())


def paginate(
    queryset: QuerySet[T],
    *,
    key: str,
    descending: bool = True,
    limit: int = DEFAULT_LIMIT,
    after: str | None = None,
    before: str | None = None,
    offset: int = 0,
    nullable: bool = False,
    tiebreak: str = "pk",
) -> Page[T]:
    """One page by (key, tiebreak), newest (largest) first unless ``descending`` is False.

    ``key`` may be a field or an annotation; ``tiebreak`` names the row's primary key as the
    index to read holds it (the default, or a joined table's column equal to it). ``after``
    continues forward from a row, ``before`` walks back from one (the query runs in the
    reverse order and its rows are flipped), so neither depends on how deep the page is.
    ``offset`` skips rows after the cursor (Notifuse clients page by offset; a cursor is
    better). One query, two where a nullable key's NULL run begins or ends on the page.
    """
    backwards = bool(before) and not after
    cursor = before if backwards else after
    direction = descending != backwards
    position = decode_cursor(cursor) if cursor else None
    if position is not None and position[0] is not None and not isinstance(position[0], _key_type(queryset, key)):
        raise InvalidCursor("cursor is not valid for this sort; follow the page links")
    if offset and nullable:  # pragma: no cover - the rows after a cursor may span two ranges
        raise ValueError("offset needs a sort key that is never NULL")
    rows: list[T] = []
    for condition in _ranges_after(key, tiebreak, position, descending=direction, nullable=nullable):
        ordered = _ordered(queryset.filter(condition), key, tiebreak, descending=direction, nullable=nullable)
        rows += ordered[offset : offset + limit + 1 - len(rows)]
        if len(rows) > limit:
            break
    has_more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    first = encode_cursor(getattr(rows[0], key), rows[0].pk) if rows else None
    last = encode_cursor(getattr(rows[-1], key), rows[-1].pk) if rows else None
    if backwards:
        return Page(items=rows, next_cursor=last, prev_cursor=first if has_more else None)
    return Page(items=rows, next_cursor=last if has_more else None, prev_cursor=first if cursor else None)
