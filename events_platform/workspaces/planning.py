"""A workspace id in a key lookup, kept out of the planner's estimates.

Statistics come from ANALYZE (autovacuum runs it once about 10% of a table changed). Taken while
a workspace had no rows, or before it existed, they make the planner estimate "workspace_id =
'new'" at one row on every table, and a lookup such as "workspace_id = 'new' AND email =
ANY(...)" then scans the workspace's whole range of a (workspace_id, ...) index, filtering by
the key: a per-request cost that grows with each row the new workspace gets, until the next
ANALYZE (in the bench: 7 ms more a single upsert and 7,000 index rows for each drain of 8
contacts, at 7,000 contacts). Such estimates are wrong exactly when a workspace is new, which is
when it starts ingesting.

Compared with an uncorrelated scalar subquery instead, "(SELECT 'new')", the value is an
InitPlan parameter the planner cannot see: it estimates the workspace at an average one, and
the lookup probes the index by its key. ``contacts/tests/test_plans_new_workspace.py`` shows the
plans on such statistics.
"""

from __future__ import annotations

from django.db.models.expressions import RawSQL

# In raw SQL, in place of the workspace's %s placeholder of a key lookup.
WORKSPACE_PARAM = "(SELECT %s)"


def workspace_value(workspace_id: str) -> RawSQL:
    """The workspace id for an ORM filter of a key lookup (``workspace_id=workspace_value(ws)``)."""
    return RawSQL("SELECT %s", (workspace_id,))
