"""The embedded mode's stand-in for Celery beat: re-evaluates rolling segments on a schedule."""

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from segments.tasks import segments_refresh_due_task


class Command(BaseCommand):
    help = "Every SEGMENT_REFRESH_INTERVAL seconds, rebuild segments with rolling timeframes (no Celery needed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=int, default=settings.SEGMENT_REFRESH_INTERVAL)
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args: Any, interval: int, once: bool, **options: Any) -> None:
        while True:
            count = segments_refresh_due_task.apply().get()
            self.stderr.write(f"scheduler: {count} segment(s) re-evaluated")
            if once:
                return
            time.sleep(interval)
