"""``RfmGroupTally``: each (model, group)'s number of score rows, kept by triggers on
``rfm_rfmscore`` (``events_platform.tallies``), filled from the scores.

Triggers rather than the services, for the reason contacts 0010 gives: every statement that
writes scores keeps the sizes, whatever wrote it (a full run, a re-score, an erasure's or a
model's cascade). On PostgreSQL one statement-level trigger per operation reads its transition
tables (an update adds the new rows' groups and takes away the old rows', so a statement that
moves no contact between groups writes nothing); on SQLite row-level triggers write one row per
score inserted or deleted and two per group changed. A TRUNCATE fires neither.

The table is locked (SHARE ROW EXCLUSIVE, what CREATE TRIGGER takes anyway) before the triggers
and the backfill, so no write is missed or counted twice. Frozen SQL.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

TALLY = 'INSERT INTO rfm_rfmgrouptally (model_id, "group", contacts)'
PG_FUNCTION = f"""CREATE FUNCTION rfm_score_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {TALLY} SELECT model_id, "group", COUNT(*) FROM tally_new GROUP BY model_id, "group";
    ELSIF TG_OP = 'DELETE' THEN
        {TALLY} SELECT model_id, "group", -COUNT(*) FROM tally_old GROUP BY model_id, "group";
    ELSE
        {TALLY} SELECT model_id, "group", SUM(d) FROM (
            SELECT model_id, "group", 1 AS d FROM tally_new
            UNION ALL SELECT model_id, "group", -1 FROM tally_old
        ) AS moved GROUP BY model_id, "group" HAVING SUM(d) <> 0;
    END IF;
    RETURN NULL;
END
$$"""
PG_TRIGGERS = {
    "insert": "AFTER INSERT ON rfm_rfmscore REFERENCING NEW TABLE AS tally_new",
    "update": "AFTER UPDATE ON rfm_rfmscore REFERENCING OLD TABLE AS tally_old NEW TABLE AS tally_new",
    "delete": "AFTER DELETE ON rfm_rfmscore REFERENCING OLD TABLE AS tally_old",
}
SQLITE_TRIGGERS = {
    "insert": f'AFTER INSERT ON rfm_rfmscore BEGIN {TALLY} VALUES (NEW.model_id, NEW."group", 1); END',
    "update": 'AFTER UPDATE OF "group" ON rfm_rfmscore WHEN OLD."group" <> NEW."group" BEGIN '
    f'{TALLY} VALUES (OLD.model_id, OLD."group", -1), (NEW.model_id, NEW."group", 1); END',
    # Only while the tally counts the group (always, when a score of it exists): Django's flush
    # (tests) empties every table by DELETE in no set order, the tally perhaps before the scores.
    "delete": "AFTER DELETE ON rfm_rfmscore WHEN EXISTS (SELECT 1 FROM rfm_rfmgrouptally t "
    'WHERE t.model_id = OLD.model_id AND t."group" = OLD."group") '
    f'BEGIN {TALLY} VALUES (OLD.model_id, OLD."group", -1); END',
}
FILL = f'{TALLY} SELECT model_id, "group", COUNT(*) FROM rfm_rfmscore GROUP BY model_id, "group"'


def install(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("LOCK TABLE rfm_rfmscore IN SHARE ROW EXCLUSIVE MODE")
        schema_editor.execute(PG_FUNCTION)
        for op, when in PG_TRIGGERS.items():
            schema_editor.execute(
                f"CREATE TRIGGER rfm_score_tally_{op} {when} FOR EACH STATEMENT EXECUTE FUNCTION rfm_score_tally()"
            )
    else:
        for op, body in SQLITE_TRIGGERS.items():
            schema_editor.execute(f"CREATE TRIGGER rfm_score_tally_{op} {body}")
    schema_editor.execute("DELETE FROM rfm_rfmgrouptally")
    schema_editor.execute(FILL)


def uninstall(apps: Any, schema_editor: Any) -> None:
    postgresql = schema_editor.connection.vendor == "postgresql"
    for op in PG_TRIGGERS:
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS rfm_score_tally_{op}" + (" ON rfm_rfmscore" if postgresql else "")
        )
    if postgresql:
        schema_editor.execute("DROP FUNCTION IF EXISTS rfm_score_tally()")


class Migration(migrations.Migration):
    dependencies = [
        ("rfm", "0001_create_rfm"),
    ]

    operations = [
        migrations.CreateModel(
            name="RfmGroupTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("group", models.CharField(max_length=48)),
                ("contacts", models.BigIntegerField()),
                (
                    "model",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="rfm.rfmmodel",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "RFM group tallies",
                "indexes": [models.Index(fields=["model", "group"], include=("contacts",), name="rfm_group_tally_idx")],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
