"""The refresh queue (PendingContactRefresh) moves to contacts: rename its table, keep its rows.

``contacts.0005_pending_contact_refresh_moves_here`` added the model to contacts' state; this
renames the table in place (``ALTER TABLE ... RENAME``: rows, constraint and indexes kept)
to the name that model expects, then drops the model from segments' state without touching
the database again.
"""

from django.db import migrations

RENAME_TABLE = migrations.AlterModelTable(name="pendingcontactrefresh", table="contacts_pendingcontactrefresh")


class Migration(migrations.Migration):
    dependencies = [("segments", "0003_pending_refresh_claims"), ("contacts", "0005_pending_contact_refresh_moves_here")]
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[RENAME_TABLE], state_operations=[migrations.DeleteModel(name="PendingContactRefresh")]
        )
    ]
