"""Operations hooks in the worker: the heartbeat the health check reads, and the action id on
every log line of a job.

- Heartbeat: when a worker is ready (Celery's `worker_ready`, in the worker's main process) a
  daemon thread upserts its `WorkerHeartbeat` row every WORKER_HEARTBEAT_INTERVAL_SECONDS; a
  clean shutdown deletes the row. A killed worker's row simply goes stale, which /healthz
  reports after WORKER_HEARTBEAT_STALE_SECONDS.
- Metrics: a pool child that exits folds its Prometheus samples into the archive
  (meetings.metrics.archive_process), which atexit does for every other process.
- Log context: `task_prerun` binds the action id (meetings.logging) for any task whose first
  parameter is named `action_id` (or that is called with an `action_id` keyword), and
  `task_postrun` unbinds it, so every line the job logs carries `action_id`.
"""

import contextlib
import inspect
import logging
import os
import threading
from datetime import timedelta
from functools import lru_cache

from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models.functions import Now

from .. import keyring
from ..logging import bind_action, unbind_action

log = logging.getLogger(__name__)

# Rows of workers gone this long (a container replaced under a new host name) are pruned.
FORGET_WORKERS_AFTER = timedelta(days=1)


def beat(hostname, pid=None):
    """Record that worker `hostname` is alive now."""
    from ..models import WorkerHeartbeat

    # The database's clock: /healthz on another host judges staleness by it too (issue 13).
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname[:255], defaults={"pid": pid, "last_seen": Now()}
    )


# The pool forks its children from this process while the heartbeat thread may be mid-write. A
# child forked then would inherit a half-used database connection and whatever locks the driver
# held, so forks wait for the beat in progress (milliseconds) and beats wait for the fork.
_beat_lock = threading.Lock()
_fork_guard_installed = False


def _install_fork_guard():
    global _fork_guard_installed
    if not _fork_guard_installed:
        os.register_at_fork(
            before=_beat_lock.acquire,
            after_in_parent=_beat_lock.release,
            after_in_child=_beat_lock.release,
        )
        _fork_guard_installed = True


class Heartbeat(threading.Thread):
    """Beats every `interval` seconds until stopped. Survives database outages (logs, retries)."""

    def __init__(self, hostname, interval):
        super().__init__(name="zoomadmin-heartbeat", daemon=True)
        self.hostname = hostname
        self.interval = interval
        self.stopping = threading.Event()

    def run(self):
        while True:
            failed = None
            with _beat_lock:
                try:
                    close_old_connections()
                    beat(self.hostname, os.getpid())
                    keyring.report_now_and_then("worker")
                except DatabaseError as e:
                    failed = e
                finally:
                    # Closed between beats: a fork never copies an open connection of this
                    # thread; a fresh one every beat costs milliseconds.
                    connection.close()
            if failed is not None:
                # Logged outside the lock: a fork must not wait for a slow log handler.
                log.warning("worker heartbeat: the database could not be written", exc_info=failed)
            if self.stopping.wait(self.interval):
                return

    def stop(self, timeout=5):
        self.stopping.set()
        self.join(timeout)


_heartbeat = None


@worker_ready.connect
def start_heartbeat(sender=None, **kwargs):
    global _heartbeat
    from ..models import WorkerHeartbeat

    hostname = getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}"
    try:
        WorkerHeartbeat.objects.filter(last_seen__lt=Now() - FORGET_WORKERS_AFTER).delete()
    except DatabaseError:
        log.warning("worker heartbeat: could not prune old rows", exc_info=True)
    finally:
        connection.close()
    _install_fork_guard()
    _heartbeat = Heartbeat(hostname, settings.WORKER_HEARTBEAT_INTERVAL_SECONDS)
    _heartbeat.start()
    log.info("worker heartbeat started for %s every %s s", hostname, _heartbeat.interval)


_metrics_server = None


@worker_ready.connect
def serve_metrics(sender=None, **kwargs):
    """WORKER_METRICS_PORT: this worker host's /metrics, for a Prometheus that cannot read the
    host's multiprocess files through a web process (none may run on this host)."""
    global _metrics_server
    from ..metrics import serve_worker_metrics

    if settings.WORKER_METRICS_PORT and _metrics_server is None:
        _metrics_server = serve_worker_metrics(
            settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDRESS, settings.METRICS_TOKEN
        )


@worker_shutdown.connect
def stop_heartbeat(sender=None, **kwargs):
    global _heartbeat
    from ..models import WorkerHeartbeat

    if _heartbeat is None:
        return
    _heartbeat.stop()
    try:
        WorkerHeartbeat.objects.filter(hostname=_heartbeat.hostname[:255]).delete()
    except DatabaseError:
        log.warning("worker heartbeat: could not remove this worker's row", exc_info=True)
    _heartbeat = None


@worker_process_shutdown.connect
def archive_pool_process_metrics(sender=None, pid=None, **kwargs):
    # Pool children leave with os._exit, which skips atexit: fold their metrics in here.
    from ..metrics import archive_process

    archive_process()


# --- the action id on every log line of a job ----------------------------------------------


@lru_cache(maxsize=256)
def _takes_action_id_first(task_name, run):
    try:
        parameters = list(inspect.signature(run).parameters)
    except (TypeError, ValueError):
        return False
    return bool(parameters) and parameters[0] == "action_id"


def _action_id_of(task, args, kwargs):
    if kwargs and kwargs.get("action_id") is not None:
        return kwargs["action_id"]
    if args and _takes_action_id_first(task.name, task.run):
        return args[0]
    return None


_bound = {}


@task_prerun.connect
def bind_action_id(task_id=None, task=None, args=None, kwargs=None, **extra):
    if task is None:
        return
    action_id = _action_id_of(task, args, kwargs)
    if action_id is not None:
        _bound[task_id] = bind_action(action_id)


@task_postrun.connect
def unbind_action_id(task_id=None, **extra):
    token = _bound.pop(task_id, None)
    if token is not None:
        # ValueError: bound in another context (a pool that switched threads): nothing to undo.
        with contextlib.suppress(ValueError):
            unbind_action(token)
