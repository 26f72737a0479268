"""The embedded mode's stand-in for Celery beat: runs every CELERY_BEAT_SCHEDULE entry in-process.

Each entry runs at its own interval (rolling segments every SEGMENT_REFRESH_INTERVAL, the
refresh queues' safety net every REFRESH_SWEEP_INTERVAL, the webhooks sweep every few seconds),
by task name, so this command needs no knowledge of the apps whose tasks it runs.
"""

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from events_platform import time_limits
from events_platform.celery import app


class Command(BaseCommand):
    help = (
        "Run the periodic tasks of CELERY_BEAT_SCHEDULE in-process, each at its interval: rebuild segments "
        "with rolling timeframes, drain refresh queues whose drain was lost, sweep webhooks (no Celery needed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=int,
            default=settings.SEGMENT_REFRESH_INTERVAL,
            help="Seconds between the tasks scheduled every SEGMENT_REFRESH_INTERVAL (rolling segments).",
        )
        parser.add_argument("--once", action="store_true", help="Run every entry once and exit.")

    def handle(self, *args: Any, interval: int, once: bool, **options: Any) -> None:
        time_limits.bind_process(time_limits.WORKER)  # it runs the workers' tasks, with their bound
        app.loader.import_default_modules()  # every app's tasks.py, so each entry's task is registered
        default = float(settings.SEGMENT_REFRESH_INTERVAL)
        schedule = {
            name: (entry["task"], float(interval) if float(entry["schedule"]) == default else float(entry["schedule"]))
            for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        }
        next_run = dict.fromkeys(schedule, 0.0)
        while True:
            for name, (task_name, every) in schedule.items():
                if time.monotonic() < next_run[name]:
                    continue
                next_run[name] = time.monotonic() + every
                result = app.tasks[task_name].apply().get()
                if name in ("segments-refresh-due", "contacts-refresh-stale") and result:
                    self.stderr.write(f"scheduler: {name}: {result}")
            if once:
                return
            time.sleep(max(0.2, min(next_run.values()) - time.monotonic()))
