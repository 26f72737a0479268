"""Environment of a bench run: which database and Redis, Django set up as in production.

The bench owns one database (its name must contain "bench": it is dropped and re-created on a
fresh load) and one Redis DB; it never touches any other database.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/events_platform_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


@dataclass(frozen=True)
class BenchEnv:
    database_url: str
    redis_url: str
    run_id: str
    # Queue served by the bench's Celery worker (gunicorn enqueues to it).
    queue: str
    # Queue of tasks enqueued by the bench process itself (loader, segment_create): never
    # consumed, dropped at the end, so the in-process measurements stay in-process.
    discard_queue: str
    secret_key: str

    @property
    def webhook_queues(self) -> tuple[str, str]:
        """The webhooks queues beside ``queue`` and ``discard_queue`` (see webhooks.tasks.webhook_queue)."""
        return (f"{self.queue}-webhooks", f"{self.discard_queue}-webhooks")

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    @property
    def maintenance_url(self) -> str:
        parts = urlsplit(self.database_url)
        return urlunsplit(parts._replace(path="/postgres"))

    @property
    def psycopg_dsn(self) -> str:
        parts = urlsplit(self.database_url)
        return urlunsplit(parts._replace(scheme="postgresql"))

    def server_env(self) -> dict[str, str]:
        """Environment of the production-style processes (gunicorn, celery worker)."""
        return {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": self.secret_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CELERY_QUEUE": self.queue,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "LOG_LEVEL": "WARNING",
        }


def configure() -> BenchEnv:
    """Read the target from the environment (defaults: the bench database, Redis DB 14) and set up Django."""
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"bench: DATABASE_URL must be PostgreSQL, got {database_url!r}")
    run_id = uuid.uuid4().hex[:8]
    env = BenchEnv(
        database_url=database_url,
        redis_url=redis_url,
        run_id=run_id,
        queue=f"bench-{run_id}",
        discard_queue=f"bench-discard-{run_id}",
        secret_key="bench-" + secrets.token_urlsafe(40),
    )
    if "bench" not in env.database_name:
        raise SystemExit(f"bench: refusing to use database {env.database_name!r} (its name must contain 'bench')")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "events_platform.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEBUG": "0",
            "SECRET_KEY": env.secret_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "SECURE_SSL_REDIRECT": "0",
            "CELERY_QUEUE": env.discard_queue,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            # The webhooks figure's receiver listens on loopback.
            "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    return env


def database_exists(env: BenchEnv) -> bool:
    import psycopg

    with psycopg.connect(env.maintenance_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [env.database_name]).fetchone()
        return row is not None


def database_recreate(env: BenchEnv) -> None:
    """Drop and create the bench database (only ever the one named in the bench's DATABASE_URL)."""
    import psycopg
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    with psycopg.connect(env.maintenance_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        name = sql.Identifier(env.database_name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def redis_drop_queue(env: BenchEnv, *queues: str) -> None:
    """Delete the bench's own queues from its Redis DB (tasks nobody will consume)."""
    import redis

    client = redis.Redis.from_url(env.redis_url)
    try:
        for queue in queues:
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    finally:
        client.close()
