"""``manage.py contact_totals_rebuild [--workspace ID]``: recompute the contacts list's stored totals.

For a backfill or a repair (the refresh queue keeps them fresh otherwise). One
set-based statement per workspace, each reported with its row count and duration as it ends.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contacts.refresh import contact_totals_rebuild
from events_platform.workspaces.models import Workspace


class Command(BaseCommand):
    help = "Recompute every contact's stored lifetime value, order count and last event (one workspace or all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", help="only this workspace id (default: every workspace)")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace_ids = list(Workspace.objects.order_by("id").values_list("id", flat=True))
        if options["workspace"]:
            if options["workspace"] not in workspace_ids:
                raise CommandError(f"No workspace with id {options['workspace']!r}.")
            workspace_ids = [options["workspace"]]
        total, began = 0, time.perf_counter()
        for number, workspace_id in enumerate(workspace_ids, start=1):
            started = time.perf_counter()
            rows = contact_totals_rebuild(workspace_id=workspace_id)
            total += rows
            self.stdout.write(
                f"[{number}/{len(workspace_ids)}] {workspace_id}: {rows:,} contacts "
                f"in {time.perf_counter() - started:.1f} s"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{total:,} contacts in {len(workspace_ids)} workspace(s), {time.perf_counter() - began:.1f} s"
            )
        )
