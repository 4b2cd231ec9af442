"""
Fixtures of the fault suite (issue 7, `make test-faults`): servers the tests own and may break,
and real worker processes configured for each scenario. What every scenario proves at the end
is in ledger.py; the Zoom world it starts from in world.py.

- `own_redis`: a redis-server of the test's own on a free port (tests/faults/services.py);
  `on_own_redis` makes it this process's broker and rate-limiter store too.
- `on_own_postgres`: a PostgreSQL cluster of the test's own, migrated, that Django's default
  database points at for the test (this process, the workers it starts and the sweeper).
- `fault_workers(**env)`: starts worker "w1" (prefork, 2 processes, with beat running the
  sweeper every second) with the fast settings of tests/fixtures/worker.py plus ENV, and returns
  its `Workers` (kill, start); the same ACTION_* settings apply to this process, which requests
  the actions and sends their messages.

The machine's shared PostgreSQL and Redis are never stopped: only servers started here are.
"""

import contextlib
import os
import runpy
from unittest import mock

import pytest

from tests.fixtures.worker import WORKER_ENV, Workers, database_url, purge_broker

from .services import PostgresCluster, RedisServer, postgres_bin_dir

# Settings this process shares with the workers: when a message counts as lost (dispatch
# timeout) is decided by whoever sent it.
SHARED_SETTINGS = (
    "ACTION_LEASE_SECONDS",
    "ACTION_DISPATCH_TIMEOUT_SECONDS",
    "ACTION_REQUEUE_AFTER_SECONDS",
    "ACTION_MAX_ATTEMPTS",
    "ACTION_RETRY_BASE_SECONDS",
    "ACTION_RETRY_MAX_SECONDS",
    "ACTION_MAX_RECLAIMS",
    "ACTION_CONFIRM_INTERVAL_SECONDS",
    "ZOOM_TIMEOUT_SECONDS",
)
# The fault suite's defaults on top of the worker fixture's: a message not claimed within 10 s
# is sent again (a killed worker's prefetched messages are gone with it).
FAULT_ENV = {"ACTION_DISPATCH_TIMEOUT_SECONDS": "10"}


@contextlib.contextmanager
def broker_at(url):
    """This process's Celery app sends its messages to URL (a Redis URL) meanwhile."""
    from zoomadmin.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def reset_pools():
        # kombu keeps one pool per broker URL in a process-wide registry: close and forget them
        # all, or a later send would find its URL's pool closed.
        from kombu import pools

        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = url
    app.conf.broker_transport_options = {"visibility_timeout": 600}
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        reset_pools()


@pytest.fixture
def own_redis():
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def on_own_redis(own_redis, settings):
    """`own_redis` is the broker and the limiter's store, here and in the workers started."""
    settings.REDIS_URL = own_redis.url
    with broker_at(own_redis.url):
        yield own_redis


@pytest.fixture
def own_postgres():
    if postgres_bin_dir() is None:
        pytest.fail("PostgreSQL server binaries are needed (apt-get install postgresql)")
    cluster = PostgresCluster()
    try:
        cluster.init().start()
        yield cluster
    finally:
        cluster.cleanup()


def database_settings_for(url):
    """DATABASES["default"] exactly as zoomadmin/settings.py makes it of DATABASE_URL=url (its
    connection age, health checks, options), with Django's defaults filled in."""
    from django.conf import settings
    from django.db import connections

    with mock.patch.dict(os.environ, {"DATABASE_URL": url}):
        made = runpy.run_path(str(settings.BASE_DIR / "zoomadmin" / "settings.py"))
    return connections.configure_settings({"default": made["DATABASES"]["default"]})["default"]


@pytest.fixture
def on_own_postgres(own_postgres, transactional_db):
    """Django's default database is a fresh, migrated database on `own_postgres` for this test,
    configured as settings.py configures any DATABASE_URL.

    The connection settings are swapped in place (connections.settings is settings.DATABASES),
    so every thread of this process and every worker started afterwards uses it; the session's
    test database is given back untouched at teardown.
    """
    from django.core.management import call_command
    from django.db import connections

    own_postgres.create_database("zoomadmin_faults")
    new = database_settings_for(own_postgres.url("zoomadmin_faults"))
    original_settings = connections.settings["default"]
    original_connection = connections["default"]
    connections.settings["default"] = new
    del connections["default"]
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield own_postgres
    finally:
        with contextlib.suppress(Exception):
            connections["default"].close()
        connections.settings["default"] = original_settings
        connections["default"] = original_connection


class FaultWorkers:
    """`fault_workers(**env)` starts worker "w1" and returns its `Workers`; `.log()` is what
    every worker it started wrote (the session's secret scan reads it)."""

    def __init__(self, zoom_sandbox, tmp_path, settings):
        self.zoom_sandbox = zoom_sandbox
        self.tmp_path = tmp_path
        self.settings = settings
        self.started = []

    def __call__(self, *, beat=True, concurrency=2, **extra):
        env = self.environment(**extra)
        purge_broker()
        workers = self.workers(env, self.tmp_path)
        workers.start("w1", beat=beat, concurrency=concurrency)
        return workers

    def workers(self, env, directory):
        """A `Workers` (none started) with ENV in DIRECTORY, stopped at teardown."""
        workers = Workers(env, directory)
        self.started.append(workers)
        return workers

    def environment(self, **extra):
        """The environment of a worker of this test (the fault suite's settings plus EXTRA, this
        database and broker, the sandbox), whose ACTION_* settings apply here too."""
        from django.conf import settings as django_settings

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "PYTEST_", "ZOOM_API_", "ZOOM_OAUTH_"))
        }
        env.update(WORKER_ENV)
        env.update(FAULT_ENV)
        env.update({k: str(v) for k, v in extra.items()})
        env.update(
            DJANGO_SETTINGS_MODULE="zoomadmin.settings",
            DATABASE_URL=database_url(),
            ZOOMADMIN_VAR_DIR=str(django_settings.VAR_DIR),
            ZOOM_API_BASE_URL=self.zoom_sandbox.api_url,
            ZOOM_OAUTH_BASE_URL=self.zoom_sandbox.oauth_url,
            PROMETHEUS_MULTIPROC_DIR=str(self.tmp_path / "prometheus"),
        )
        if django_settings.REDIS_URL:
            env["REDIS_URL"] = django_settings.REDIS_URL
        else:
            env.pop("REDIS_URL", None)
        (self.tmp_path / "prometheus").mkdir(exist_ok=True)
        for name in SHARED_SETTINGS:
            if name in env:
                value = env[name]
                setattr(self.settings, name, float(value) if "." in value else int(value))
        return env

    def stop_all(self):
        for workers in self.started:
            workers.stop_all()

    def log(self):
        return "\n".join(workers.log() for workers in self.started)


def _broker_reachable():
    """False when the broker is a Redis that does not answer (a test stopped it and failed):
    purging it would wait for kombu's connection retries."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return True
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def fault_workers(transactional_db, zoom_sandbox, request, tmp_path, settings):
    """Start worker processes with per-test settings: `workers = fault_workers(X="1")`.

    The environment is built when called (after any database or broker swap), the queue is
    purged first, every process is SIGKILLed at teardown and their logs printed on failure.
    """
    starter = FaultWorkers(zoom_sandbox, tmp_path, settings)
    try:
        yield starter
    finally:
        starter.stop_all()
        report = getattr(request.node, "_report_call", None)
        if report is None or report.failed:
            print(starter.log()[-30000:])
        if _broker_reachable():
            purge_broker()
