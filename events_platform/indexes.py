"""Index housekeeping shared by migrations: the single-column indexes Django gives a foreign
key or a text key of its own (the plain one and, on PostgreSQL, its ``_like`` pattern index),
found in the catalogue so their generated names need not be known, and dropped without a lock
that stops writes (``CONCURRENTLY``: the migration must not be atomic; re-runnable)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.db import models


def own_indexes(connection: Any, table: str, column: str, *, keep: Iterable[str] = ()) -> list[str]:
    """The single-column, non-unique indexes of ``table`` on ``column`` (the FK one, its _like),
    but those named in ``keep``, on ``connection`` (a migration's ``schema_editor.connection``)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    kept = set(keep)
    return sorted(
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
        and name not in kept
    )


def drop_own_indexes(schema_editor: Any, table: str, column: str, *, keep: Iterable[str] = ()) -> list[str]:
    """Drop ``own_indexes`` (CONCURRENTLY on PostgreSQL); returns their names."""
    names = own_indexes(schema_editor.connection, table, column, keep=keep)
    postgresql = schema_editor.connection.vendor == "postgresql"
    drop = "DROP INDEX CONCURRENTLY IF EXISTS" if postgresql else "DROP INDEX IF EXISTS"
    for name in names:
        schema_editor.execute(f"{drop} {schema_editor.quote_name(name)}")
    return names


def restore_field_index(schema_editor: Any, model: Any, name: str) -> None:
    """Backwards: give field ``name`` of ``model`` (a migration's historical model) its own
    index again, as ``db_index=True`` makes it (with the ``_like`` one on PostgreSQL)."""
    unindexed, indexed = (copy.copy(model._meta.get_field(name)) for _ in range(2))  # copies keep the relation
    unindexed.db_index, indexed.db_index = False, True
    schema_editor.alter_field(model, unindexed, indexed)


def unindexed_fk(to: str, related_name: str, **kwargs: Any) -> models.ForeignKey[Any, Any]:
    """A migration's state of a cascading foreign key without an index of its own."""
    return models.ForeignKey(db_index=False, on_delete=models.CASCADE, related_name=related_name, to=to, **kwargs)
