"""WSGI entry point for gunicorn (and runserver): a web process, bounded as one."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "events_platform.settings")

django_application = get_wsgi_application()

from events_platform.middleware import ChunkedBodyWSGI  # noqa: E402 (needs Django set up above)

# gunicorn passes a chunked request body without its length; this gives it one (middleware.py).
application = ChunkedBodyWSGI(django_application)

from events_platform import time_limits  # noqa: E402 (needs the settings configured above)

time_limits.bind_process(time_limits.WEB)
