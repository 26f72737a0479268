"""The SQL functions rules compile to, each written for PostgreSQL and SQLite: goal values in
integer cents, top-level JSON keys by type, and contact properties read as instants.

None of them can raise on bad data: a value of the wrong JSON type or format is NULL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import BigIntegerField, BooleanField, CharField, F, Field, FloatField, Func

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType

# Each as_sql below writes its own SQL: it takes Func.as_sql's template arguments (*_template)
# and ignores them.


class Cents(Func):
    """An event's goal value in integer cents (0 without a value): exact on SQLite too, where
    decimals are stored as floating point and SUM over them would round."""

    template = "CAST(ROUND(COALESCE(%(expressions)s, 0) * 100) AS BIGINT)"
    output_field = BigIntegerField()


class AggregatedValue(Func):
    """An event's goal value (0 without one) as fed to SUM/MIN/MAX of a grouped scan, scaled to
    cents by ``InCents`` around the aggregate. SQLite stores decimals as floating point, so
    there each value is rounded to whole cents first; PostgreSQL aggregates the exact numerics
    and scales once (rounding and casting every row would slow the scan). SUM skips NULLs,
    which is the same as adding 0, so ``skip_null`` leaves them to it."""

    output_field = BigIntegerField()

    def __init__(self, expression: Any, *, skip_null: bool = False) -> None:
        super().__init__(expression)
        self.skip_null = skip_null

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *_template: Any, **extra: Any
    ) -> _AsSqlType:
        return compiler.compile(Cents(*self.get_source_expressions()))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return (sql, params) if self.skip_null else (f"COALESCE({sql}, 0)", params)


class InCents(Func):
    """An aggregate of ``AggregatedValue`` in integer cents (NULL stays NULL)."""

    output_field = BigIntegerField()

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *_template: Any, **extra: Any
    ) -> _AsSqlType:
        return compiler.compile(self.get_source_expressions()[0])

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"({sql} * 100)", params


class _JSONFunc(Func):
    """A function of a JSON column, written for PostgreSQL and SQLite only (``as_postgresql``,
    ``as_sqlite``): any other database is refused when the query compiles."""

    def as_sql(self, compiler: Any, connection: Any, *_template: Any, **extra: Any) -> Any:
        raise NotImplementedError(f"JSON key conditions support PostgreSQL and SQLite, not {connection.vendor}.")


class JSONKey(_JSONFunc):
    """One key of a JSON column, per backend: ``kind`` is ``type`` (the JSON type name, 'null' for
    JSON null, SQL NULL when absent), ``number`` (the value if a JSON number, else NULL) or
    ``string`` (the text if a JSON string, else NULL). ``key`` is a top-level key, or a path of
    keys where a segment of digits is an array index (never an object key)."""

    def __init__(self, field: str, key: str | Sequence[str], kind: str) -> None:
        output: Field = {"type": CharField(), "number": FloatField(), "string": CharField()}[kind]
        super().__init__(F(field), output_field=output)
        self.key = key
        self.kind = kind

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        (parent, parent_params), (last, last_params) = _pg_json_path(column, params, self.key)
        typeof = f"jsonb_typeof({parent} -> {last})"
        if self.kind == "type":
            return typeof, [*parent_params, *last_params]
        wanted = "number" if self.kind == "number" else "string"
        cast = "::numeric" if self.kind == "number" else ""
        sql = f"(CASE WHEN {typeof} = '{wanted}' THEN ({parent} ->> {last}){cast} END)"
        return sql, [*parent_params, *last_params] * 2

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        path = _sqlite_json_path(self.key)
        typeof = f"json_type({column}, %s)"
        if self.kind == "type":
            return typeof, [*params, path]
        wanted = "('integer', 'real')" if self.kind == "number" else "('text')"
        sql = f"(CASE WHEN {typeof} IN {wanted} THEN json_extract({column}, %s) END)"
        return sql, [*params, path, *params, path]


def _path_segments(key: str | Sequence[str]) -> list[str]:
    return [key] if isinstance(key, str) else list(key)


def _pg_json_path(
    column: str, params: list[Any], key: str | Sequence[str]
) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    """The value holding the path's last segment, and that segment as an operand of ``->``: a
    text for a key, an integer for an index (``-> 0`` on an object is NULL, as is a key on an array)."""
    parent, parent_params = column, list(params)
    operands = [("%s::int", int(s)) if s.isdigit() else ("%s::text", s) for s in _path_segments(key)]
    for sql, value in operands[:-1]:
        parent, parent_params = f"({parent} -> {sql})", [*parent_params, value]
    last, value = operands[-1]
    return (parent, parent_params), (last, [value])


def _sqlite_json_path(key: str | Sequence[str]) -> str:
    return "$" + "".join(f"[{s}]" if s.isdigit() else "." + json.dumps(s) for s in _path_segments(key))


class JSONHolds(_JSONFunc):
    """Whether the JSON array at a path holds the string ``value`` as an element, or the JSON
    object there has it as a key (Notifuse's ``in_array``); false for anything else, never NULL."""

    output_field = BooleanField()

    def __init__(self, field: str, path: Sequence[str], value: str) -> None:
        super().__init__(F(field))
        self.path = list(path)
        self.value = value

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        (parent, parent_params), (last, last_params) = _pg_json_path(column, params, self.path)
        value = f"({parent} -> {last})"
        args = [*parent_params, *last_params]
        sql = f"COALESCE(jsonb_typeof({value}) IN ('array', 'object') AND jsonb_exists({value}, %s::text), false)"
        return sql, [*args, *args, self.value]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        path = _sqlite_json_path(self.path)
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({column}, %s) AS held WHERE "
            f"(json_type({column}, %s) = 'array' AND held.type = 'text' AND held.value = %s) OR "
            f"(json_type({column}, %s) = 'object' AND held.key = %s))"
        )
        return sql, [*params, path, *params, path, self.value, *params, path, self.value]


# A contact property the date operators read (see the package docstring), calendar included, as
# one regex both databases and Python agree on: ASCII digits only, \A/\Z (not $, which Python
# lets match before a trailing newline), no casts, so bad data can never raise in SQL.
_YEAR = r"(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
PROPERTY_INSTANT_PATTERN = (
    rf"\A({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|\+00:00)?)?\Z"
)


def instant_text(moment: dt.datetime) -> str:
    """An instant as ``PropertyInstant`` normalises a property: UTC, ``YYYY-MM-DDTHH:MM:SS.ffffff``."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


class PropertyInstant(_JSONFunc):
    """A contact property as a fixed-width UTC text ``YYYY-MM-DDTHH:MM:SS.ffffff`` when it is a JSON
    string holding a valid instant (``PROPERTY_INSTANT_PATTERN``), else NULL. Text of one width
    and format orders as the instants do, so comparisons need no cast that bad data could break."""

    output_field = CharField()
    # The tail of the full form; a valid value of length L (10, 16, 19, 21-26) without its suffix
    # is completed by this text from position L - 9.
    PADDING = "T00:00:00.000000"

    def __init__(self, field: str, key: str) -> None:
        super().__init__(F(field))
        self.key = key

    def _normalised(self, text: str, valid: str, params: list[Any]) -> tuple[str, list[Any]]:
        # The pattern allows "Z" and "+00:00" only as a suffix, so removing them anywhere is safe.
        core = f"replace(replace({text}, 'Z', ''), '+00:00', '')"
        sql = f"(CASE WHEN {valid} THEN {core} || substr('{self.PADDING}', length({core}) - 9) END)"
        return sql, params

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        text = f"({column} ->> %s::text)"
        valid = f"jsonb_typeof({column} -> %s::text) = 'string' AND {text} ~ %s"
        # Placeholders in order: valid (typeof key, text key, pattern), then core twice (text key).
        args = [*params, self.key, *params, self.key, PROPERTY_INSTANT_PATTERN]
        args += [*params, self.key, *params, self.key]
        sql, args = self._normalised(text, valid, args)
        # Byte order, whatever the database's collation: the format alone decides the order.
        return f'({sql} COLLATE "C")', args

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        path = "$." + json.dumps(self.key)
        text = f"json_extract({column}, %s)"
        valid = f"json_type({column}, %s) = 'text' AND {text} REGEXP %s"
        args = [*params, path, *params, path, PROPERTY_INSTANT_PATTERN]
        args += [*params, path, *params, path]
        return self._normalised(text, valid, args)
