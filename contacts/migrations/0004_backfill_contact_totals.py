"""Fill ContactTotals for the contacts that exist, as services.contact_totals_rebuild does.

Plain SQL that runs on PostgreSQL and SQLite alike, frozen here rather than calling the
service, so later changes to the service never change what this migration did.
"""

from django.db import migrations

BACKFILL = """
INSERT INTO contacts_contacttotals (contact_id, workspace_id, lifetime_value, order_count, last_event_at, updated_at)
SELECT c.id, c.workspace_id,
       COALESCE(SUM(CASE WHEN e.goal_type = 'purchase' THEN e.goal_value END), 0),
       COUNT(CASE WHEN e.goal_type = 'purchase' AND e.goal_value > 0 THEN 1 END),
       MAX(e.occurred_at),
       CURRENT_TIMESTAMP
FROM contacts_contact c
LEFT JOIN contacts_customevent e
       ON e.contact_id = c.id AND e.workspace_id = c.workspace_id AND e.deleted_at IS NULL
GROUP BY c.id, c.workspace_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0003_contact_totals"),
    ]

    operations = [
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop, elidable=True),
    ]
