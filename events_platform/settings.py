"""One settings module, read from the environment.

Defaults give the embedded mode: a SQLite file and background tasks run in-process
(Celery eager mode). ``DATABASE_URL`` switches to PostgreSQL and ``REDIS_URL`` to a
Celery broker served by real worker and beat processes.
"""

import ipaddress
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Under pytest the defaults are the local ones (no HTTPS redirect, a dev secret);
# pytest-django still runs the tests themselves with DEBUG off.
RUNNING_TESTS = "pytest" in sys.modules
DEBUG = env.bool("DEBUG", default=RUNNING_TESTS)

# With DEBUG off, a missing secret or host list must fail loudly rather than fall back.
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-change-me")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local work).")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (comma separated).")

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "events_platform.workspaces",
    "contacts",
    "rfm",
    "segments",
    "webhooks",
]

MIDDLEWARE = [
    # First: oversized, undecodable or NUL-carrying requests are refused before anything reads them.
    "events_platform.middleware.RequestBoundaryMiddleware",
    "events_platform.after_response.AfterResponseMiddleware",
    "events_platform.time_limits.TimeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "events_platform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "events_platform.workspaces.context_processors.workspace",
            ],
            # Tags shared by every app's pages (events_platform itself is not an app).
            "libraries": {"pages": "events_platform.templatetags.pages"},
        },
    },
]

WSGI_APPLICATION = "events_platform.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while a writer commits; IMMEDIATE makes writers queue
    # instead of failing with "database is locked" on lock upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The ingest statements (and the API key lookup) are prepared on the server: events_platform/prepared.py.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASE_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # Their plans are generic: planned once per connection, not again at every execution. Left to
    # choose, PostgreSQL keeps re-planning the contacts statement (0.3-0.4 ms per request), as the
    # generic plan's row estimates for its parameter arrays look dearer than they are; the plan is
    # the same index probes (contacts/tests/test_plans_new_workspace.py checks it). Only prepared
    # statements have a plan to reuse, so nothing else changes. Set in the connection's startup
    # packet: no statement of its own.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()

# Bounds on work (README "Limits"; events_platform/time_limits.py). A web process stops any
# statement of a request, and the request's database work as a whole, after
# WEB_STATEMENT_TIMEOUT seconds: below gunicorn's worker timeout, so the client gets a 503 it
# can read instead of a killed worker. Celery workers get a larger bound per statement, and
# time limits per task. 0 switches a statement limit off.
GUNICORN_TIMEOUT = env.int("GUNICORN_TIMEOUT", default=30)
WEB_STATEMENT_TIMEOUT = env.float("WEB_STATEMENT_TIMEOUT", default=max(GUNICORN_TIMEOUT - 5, 1))
if GUNICORN_TIMEOUT and WEB_STATEMENT_TIMEOUT >= GUNICORN_TIMEOUT:
    raise ImproperlyConfigured(
        f"WEB_STATEMENT_TIMEOUT ({WEB_STATEMENT_TIMEOUT:g} s) must be below GUNICORN_TIMEOUT "
        f"({GUNICORN_TIMEOUT} s), or a slow request is killed with the worker instead of answered."
    )
WORKER_STATEMENT_TIMEOUT = env.float("WORKER_STATEMENT_TIMEOUT", default=300)

# SQLite ignores INCLUDE columns of the covering goal index; PostgreSQL uses them.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Login throttling (events_platform/login_limits.py): LOGIN_FAILURE_LIMIT failed sign-ins for a
# username, or from a client address, lock it for LOGIN_LOCKOUT_MINUTES (admin's login too).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
# Proxies in front of the app that append to X-Forwarded-For (a load balancer: 1); 0 trusts none.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "events_platform.login_limits.client_ip"
AXES_LOCKOUT_CALLABLE = "events_platform.login_limits.lockout_response"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Security: production-like defaults when DEBUG is off; each can be relaxed from the
# environment (for example behind a TLS-terminating proxy on plain HTTP inside).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): scripts, styles, fonts and fetches only from this site, no
# inline script, style or event handler anywhere (pages, admin, the Swagger UI at /api/docs/, whose
# page alone also allows data: images: events_platform/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "events_platform.workspaces.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["events_platform.parsers.AnyContentTypeJSONParser"],
    "EXCEPTION_HANDLER": "events_platform.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "events_platform.workspaces.schema.DocstringAutoSchema",
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": None,
}

# Requests per API key per window, counted across all web processes (Redis with REDIS_URL, else
# the database): "300/s", "10000/m", "50000/h" or "off". Generous by default: one key's ingest
# on this kind of machine stays far below it.
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="500/s")

SPECTACULAR_SETTINGS = {
    "TITLE": "events_platform API",
    "DESCRIPTION": (
        "Custom events, contacts, timeline and segments. Compatible with Notifuse's "
        "custom-events API: send `Authorization: Bearer <api key>` and `workspace_id` "
        "in the JSON body of POSTs or the query of GETs."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two leaves take a timeframe_operator with different operator sets: name each enum.
    "ENUM_NAME_OVERRIDES": {
        "TimeframeOperatorEnum": "segments.rules.vocabulary.TIMEFRAME_OPERATORS",
        "TimelineTimeframeOperatorEnum": "segments.rules.vocabulary.TIMELINE_TIMEFRAME_OPERATORS",
        # A test delivery's event_type and a subscription's event_types: one enum.
        "EventTypeEnum": "webhooks.events.EVENT_TYPE_NAMES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "events_platform.workspaces.schema.state_request_rules",
    ],
}

# Celery: without REDIS_URL tasks run in-process, right after the commit that queued them.
# Tests run tasks in-process too, except the real-worker tests, which switch eager mode off.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL or RUNNING_TESTS)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes every database connection before and after each task unless this
# is set: a drain of a few contacts then paid a new PostgreSQL session (a backend forked, its
# catalog caches cold: its first insert took 3-9 ms instead of 0.3). With it, the fixup closes
# them only every this many tasks, and events_platform/celery.py applies Django's per-request
# rules around each task instead (CONN_MAX_AGE, a broken connection dropped, health checks).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# A task past its soft limit gets SoftTimeLimitExceeded (a build records it as failed); past the
# hard limit its worker process is replaced. Both stay inside a build's 10-minute lease.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("TASK_SOFT_TIME_LIMIT", default=480)
CELERY_TASK_TIME_LIMIT = env.int("TASK_TIME_LIMIT", default=540)
# A separate queue name lets several test runs or environments share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")

# How often segments with rolling timeframes are re-evaluated (seconds): Celery beat runs it
# with workers, `manage.py run_scheduler` in the embedded mode.
SEGMENT_REFRESH_INTERVAL = env.int("SEGMENT_REFRESH_INTERVAL", default=15 * 60)
# Seconds a changed contact waits in the refresh queue (contacts/refresh.py) so that contacts
# changing close together are refreshed (totals, segments) together.
SEGMENT_REFRESH_BATCH_DELAY = env.float("SEGMENT_REFRESH_BATCH_DELAY", default=0.2)
# Seconds between two runs of the recovery sweep (beat): it re-publishes work that is recorded
# in the database but whose publish was lost (broker down) or whose worker died (README,
# "Recovery"). Cheap (indexed reads of small queues), so it runs often.
REFRESH_SWEEP_INTERVAL = env.float("REFRESH_SWEEP_INTERVAL", default=5.0)

# Outgoing webhooks. Networks a webhook URL may reach although they are not public (loopback,
# private, ...): comma-separated CIDRs, empty by default; `make run` allows 127.0.0.0/8.
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
for _network in WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network.strip(), strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_NETWORKS: {_exc}") from _exc
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=15.0)  # seconds for a whole attempt
WEBHOOK_CLAIM_LEASE = env.float("WEBHOOK_CLAIM_LEASE", default=60.0)  # seconds a sender's claim lasts
if WEBHOOK_CLAIM_LEASE <= WEBHOOK_TIMEOUT + 5:
    # A send starts only while the lease outlasts the timeout by 5 s; a shorter lease sends nothing.
    raise ImproperlyConfigured("WEBHOOK_CLAIM_LEASE must exceed WEBHOOK_TIMEOUT + 5 seconds.")
WEBHOOK_SWEEP_INTERVAL = env.float("WEBHOOK_SWEEP_INTERVAL", default=5.0)
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
# Empty: "webhooks" beside the default queue (see webhooks.tasks.webhook_queue).
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", default="")
_WEBHOOK_QUEUE = WEBHOOK_QUEUE or (
    "webhooks" if CELERY_TASK_DEFAULT_QUEUE == "celery" else f"{CELERY_TASK_DEFAULT_QUEUE}-webhooks"
)
# A worker started without -Q consumes every queue listed here: one plain worker runs everything.
CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(_WEBHOOK_QUEUE)]
CELERY_TASK_ROUTES = ("webhooks.tasks.route_task",)

CELERY_BEAT_SCHEDULE = {
    "segments-refresh-due": {
        "task": "segments.tasks.segments_refresh_due_task",
        "schedule": float(SEGMENT_REFRESH_INTERVAL),
    },
    # The recovery sweeps (README, Limits: "Recovery"): builds and drains whose publish was lost
    # or whose worker died are published again.
    "segments-resume-builds": {
        "task": "segments.tasks.segments_resume_builds_task",
        "schedule": REFRESH_SWEEP_INTERVAL,
    },
    "contacts-refresh-stale": {
        "task": "contacts.tasks.contacts_refresh_stale_task",
        "schedule": REFRESH_SWEEP_INTERVAL,
    },
    # Daily full RFM runs (00:05 in each model's timezone) are started by this check.
    "rfm-models-due": {
        "task": "rfm.tasks.rfm_models_due_task",
        "schedule": float(min(SEGMENT_REFRESH_INTERVAL, 300)),
    },
    # The dashboard's activity deltas folded to one row per 15-minute bucket, and the contact
    # counts to one row per workspace (contacts/activity.py).
    "contacts-activity-compact": {
        "task": "contacts.tasks.contacts_activity_compact_task",
        "schedule": 60.0,
    },
    # The RFM group sizes' delta rows folded to one row per (model, group) (rfm/models.py).
    "rfm-group-tally-compact": {
        "task": "rfm.tasks.rfm_group_tally_compact_task",
        "schedule": 60.0,
    },
    "webhooks-sweep": {
        "task": "webhooks.tasks.webhooks_sweep_task",
        "schedule": WEBHOOK_SWEEP_INTERVAL,
    },
    "webhooks-prune": {
        "task": "webhooks.tasks.webhooks_prune_task",
        "schedule": 3600.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One line per task run is noise in the embedded mode, where every write runs tasks inline.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}
