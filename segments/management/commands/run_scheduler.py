"""The embedded mode's stand-in for Celery beat: runs the periodic tasks on a schedule."""

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from contacts.tasks import contacts_refresh_stale_task
from segments.tasks import segments_refresh_due_task


class Command(BaseCommand):
    help = (
        "Every SEGMENT_REFRESH_INTERVAL seconds, rebuild segments with rolling timeframes and drain "
        "refresh queues whose drain was lost (no Celery needed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=int, default=settings.SEGMENT_REFRESH_INTERVAL)
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args: Any, interval: int, once: bool, **options: Any) -> None:
        while True:
            count = segments_refresh_due_task.apply().get()
            stale = contacts_refresh_stale_task.apply().get()
            self.stderr.write(f"scheduler: {count} segment(s) re-evaluated, {stale} stale queue(s) drained")
            if once:
                return
            time.sleep(interval)
