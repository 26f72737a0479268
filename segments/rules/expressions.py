"""The SQL functions rules compile to, each written for PostgreSQL and SQLite: goal values in
integer cents, top-level JSON keys by type, and contact properties read as instants.

None of them can raise on bad data: a value of the wrong JSON type or format is NULL.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from django.db.models import BigIntegerField, CharField, F, Field, FloatField, Func

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


class JSONKey(Func):
    """One top-level key of a JSON column, per backend: ``kind`` is ``type`` (the JSON type name,
    'null' for JSON null, SQL NULL when absent), ``number`` (the value if a JSON number, else NULL)
    or ``string`` (the text if a JSON string, else NULL)."""

    def __init__(self, field: str, key: str, kind: str) -> None:
        output: Field = {"type": CharField(), "number": FloatField(), "string": CharField()}[kind]
        super().__init__(F(field), output_field=output)
        self.key = key
        self.kind = kind

    def as_sql(self, compiler: Any, connection: Any, *_template: Any, **extra: Any) -> Any:
        raise NotImplementedError(f"JSON key conditions support PostgreSQL and SQLite, not {connection.vendor}.")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        typeof = f"jsonb_typeof({column} -> %s::text)"
        if self.kind == "type":
            return typeof, [*params, self.key]
        wanted = "number" if self.kind == "number" else "string"
        cast = "::numeric" if self.kind == "number" else ""
        sql = f"(CASE WHEN {typeof} = '{wanted}' THEN ({column} ->> %s::text){cast} END)"
        return sql, [*params, self.key, *params, self.key]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        path = "$." + json.dumps(self.key)
        typeof = f"json_type({column}, %s)"
        if self.kind == "type":
            return typeof, [*params, path]
        wanted = "('integer', 'real')" if self.kind == "number" else "('text')"
        sql = f"(CASE WHEN {typeof} IN {wanted} THEN json_extract({column}, %s) END)"
        return sql, [*params, path, *params, path]


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


class PropertyInstant(Func):
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

    def as_sql(self, compiler: Any, connection: Any, *_template: Any, **extra: Any) -> Any:
        raise NotImplementedError(f"JSON key conditions support PostgreSQL and SQLite, not {connection.vendor}.")

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
