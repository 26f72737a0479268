"""``ContactTally``: each workspace's number of contacts, kept by triggers on ``contacts_contact``
(``events_platform.tallies``), filled from the contacts.

Triggers rather than the services: every statement that inserts or deletes contacts keeps the
count, whatever wrote it (the ingest, an import, the admin, an erasure's or a workspace's
cascade, a COPY), as an index would be. On PostgreSQL one statement-level trigger per operation
reads its transition table (one delta row per workspace the statement changed: a request that
creates no contact writes none); on SQLite a row-level trigger writes one row per contact. A
TRUNCATE fires neither: truncate ``contacts_contacttally`` with ``contacts_contact``.

The table is locked before the triggers are created and the backfill runs (SHARE ROW
EXCLUSIVE, what CREATE TRIGGER takes anyway): writes wait the few seconds, so none is neither
counted by the backfill nor by a trigger. The SQL is frozen here (later code never changes what
this did).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

PG_FUNCTION = """CREATE FUNCTION contacts_contact_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO contacts_contacttally (workspace_id, contacts)
        SELECT workspace_id, COUNT(*) FROM tally_rows GROUP BY workspace_id;
    ELSE
        INSERT INTO contacts_contacttally (workspace_id, contacts)
        SELECT workspace_id, -COUNT(*) FROM tally_rows GROUP BY workspace_id;
    END IF;
    RETURN NULL;
END
$$"""
PG_TRIGGER = (
    "CREATE TRIGGER contacts_contact_tally_{op} AFTER {OP} ON contacts_contact "
    "REFERENCING {side} TABLE AS tally_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_contact_tally()"
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER contacts_contact_tally_{op} AFTER {OP} ON contacts_contact {when}BEGIN "
    "INSERT INTO contacts_contacttally (workspace_id, contacts) VALUES ({row}.workspace_id, {sign}); END"
)
OPERATIONS = (("insert", "INSERT", "NEW", "1"), ("delete", "DELETE", "OLD", "-1"))
# A delete counts only while the tally counts the workspace (always, when a contact of it
# exists): Django's flush (tests) empties every table by DELETE in no set order.
SQLITE_WHEN = {"delete": "WHEN EXISTS (SELECT 1 FROM contacts_contacttally t WHERE t.workspace_id = OLD.workspace_id) "}
FILL = (
    "INSERT INTO contacts_contacttally (workspace_id, contacts) "
    "SELECT workspace_id, COUNT(*) FROM contacts_contact GROUP BY workspace_id"
)


def install(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("LOCK TABLE contacts_contact IN SHARE ROW EXCLUSIVE MODE")
        schema_editor.execute(PG_FUNCTION)
        for op, OP, side, _sign in OPERATIONS:
            schema_editor.execute(PG_TRIGGER.format(op=op, OP=OP, side=side))
    else:
        for op, OP, row, sign in OPERATIONS:
            schema_editor.execute(SQLITE_TRIGGER.format(op=op, OP=OP, row=row, sign=sign, when=SQLITE_WHEN.get(op, "")))
    schema_editor.execute("DELETE FROM contacts_contacttally")
    schema_editor.execute(FILL)


def uninstall(apps: Any, schema_editor: Any) -> None:
    for op, *_ in OPERATIONS:
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS contacts_contact_tally_{op}"
            + (" ON contacts_contact" if schema_editor.connection.vendor == "postgresql" else "")
        )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS contacts_contact_tally()")


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0009_event_activity"),
        ("workspaces", "0002_api_key_rate_window"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContactTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("contacts", models.BigIntegerField()),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "contact tallies",
                "indexes": [models.Index(fields=["workspace"], include=("contacts",), name="contact_tally_ws_idx")],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
