"""
Prometheus metrics, served at /metrics (meetings/views/ops.py).

Two sources, one page:
- What happens inside processes (requests to Zoom, their latency, 429s) is counted where it
  happens, in web and worker processes alike, with prometheus-client's multiprocess mode: each
  process writes its samples to files in settings.PROMETHEUS_MULTIPROC_DIR (the settings export
  it as the environment variable prometheus-client reads, before it is first imported) and the
  scrape adds them up. A process that exits cleanly folds its files into `*_archive.db` there
  (`archive_process`), so counters survive gunicorn/Celery recycling their processes without the
  directory growing a file per process ever started; a killed process's files simply stay. All
  processes writing the directory must share one host (and pid namespace). Empty it when the
  whole service restarts, if counters should start again from zero.
- What the database already knows (actions by kind and state, the queue, accounts, worker
  heartbeats) is read at scrape time by `DatabaseCollector`: no process has to keep it in step.

`observe_zoom_response` is the `on_response` hook for `ZoomClient` / `client_for_account`:

    client = ZoomClient.for_account(account, on_response=observe_zoom_response)
"""

import atexit
import contextlib
import fcntl
import logging
import os
import re
import time

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils.timezone import now
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.mmap_dict import MmapedDict, mmap_key

logger = logging.getLogger(__name__)

ZOOM_REQUESTS = Counter(
    "zoomadmin_zoom_requests_total",
    "Requests to Zoom's API by method, path template and answer (HTTP status, or the failure "
    "when there was none: timeout, connection_error, error).",
    ["method", "path", "status"],
)
ZOOM_REQUEST_DURATION = Histogram(
    "zoomadmin_zoom_request_duration_seconds",
    "Time from sending a request to Zoom to having its answer.",
    ["method", "path"],
    # Zoom answers in 100-500 ms; the tail up to the client timeout (10 s by default) matters.
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ZOOM_RATE_LIMITED = Counter(
    "zoomadmin_zoom_rate_limited_total",
    "429 answers from Zoom, by path template and X-RateLimit-Type (QPS, Daily-limit, unknown).",
    ["method", "path", "limit_type"],
)

_LIMIT_TYPES = {"qps": "QPS", "daily-limit": "Daily-limit"}
_NUMERIC_SEGMENT = re.compile(r"^\d+$")
_TEMPLATE_SEGMENT = re.compile(r"^\{[A-Za-z_]+\}$")
_PLAIN_SEGMENT = re.compile(r"^[a-z_]{1,40}$")


def path_label(path):
    """A bounded label for a path: the client passes templates ("/meetings/{meetingId}"), but a
    concrete id or UUID must never become a label value of its own (one series per meeting)."""
    path = (path or "").split("?", 1)[0]
    segments = []
    for segment in path.strip("/").split("/"):
        if not segment or _TEMPLATE_SEGMENT.match(segment) or _PLAIN_SEGMENT.match(segment):
            segments.append(segment)
        elif _NUMERIC_SEGMENT.match(segment):
            segments.append("{id}")
        else:
            segments.append("{uuid}")
    return "/" + "/".join(segments)


def _failure_label(error):
    name = type(error).__name__ if error is not None else ""
    if "Timeout" in name:
        return "timeout"
    if "Connection" in name:
        return "connection_error"
    return "error"


def observe_zoom_response(method, path_template, status, duration_ms, error=None):
    """The ZoomClient `on_response` hook: count the request, its latency, and 429s.

    `status` is the HTTP status (None when no answer came: timeout, connection refused);
    `error` the ZoomError raised for it, if any. Never raises: metrics must not break a call.
    """
    try:
        method = (method or "").upper() or "GET"
        path = path_label(path_template)
        status_label = str(int(status)) if status else _failure_label(error)
        ZOOM_REQUESTS.labels(method, path, status_label).inc()
        if duration_ms is not None:
            ZOOM_REQUEST_DURATION.labels(method, path).observe(max(0.0, duration_ms) / 1000.0)
        if status == 429:
            limit_type = str(getattr(error, "limit_type", None) or "").lower()
            ZOOM_RATE_LIMITED.labels(method, path, _LIMIT_TYPES.get(limit_type, "unknown")).inc()
    except Exception:
        logger.warning("could not record a Zoom response metric", exc_info=True)


class DatabaseCollector:
    """Gauges read from the database at scrape time (cheap aggregate queries on indexed data)."""

    def collect(self):
        from .models import Action, ZoomAccount
        from .models.actions import ActionKind, ActionState
        from .models.ops import WorkerHeartbeat

        up = GaugeMetricFamily(
            "zoomadmin_database_up", "1 if the scrape could read the database, else 0."
        )
        try:
            counts = {
                (row["kind"], row["state"]): row["n"]
                for row in Action.objects.order_by().values("kind", "state").annotate(n=Count("id"))
            }
            queued = Action.objects.filter(state=ActionState.QUEUED).aggregate(
                n=Count("id"), oldest=Min("requested_at")
            )
            accounts = dict(
                ZoomAccount.objects.order_by().values_list("status").annotate(n=Count("id"))
            )
            heartbeats = list(WorkerHeartbeat.objects.values_list("hostname", "last_seen"))
        except DatabaseError:
            logger.warning("metrics: the database could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        actions = GaugeMetricFamily(
            "zoomadmin_actions",
            "Actions in the audit trail by kind and state.",
            labels=["kind", "state"],
        )
        for kind in ActionKind.values:
            for state in ActionState.values:
                actions.add_metric([kind, state], counts.get((kind, state), 0))
        yield actions

        yield GaugeMetricFamily(
            "zoomadmin_action_queue_depth",
            "Actions requested and waiting for a worker (state queued).",
            value=queued["n"],
        )
        oldest = queued["oldest"]
        yield GaugeMetricFamily(
            "zoomadmin_action_oldest_queued_age_seconds",
            "How long the oldest queued action has waited (0 when none is queued).",
            value=(now() - oldest).total_seconds() if oldest else 0,
        )

        by_status = GaugeMetricFamily(
            "zoomadmin_zoom_accounts",
            "Connected Zoom accounts by connection status.",
            labels=["status"],
        )
        for status in ZoomAccount.Status.values:
            by_status.add_metric([status], accounts.get(status, 0))
        yield by_status

        ages = GaugeMetricFamily(
            "zoomadmin_worker_heartbeat_age_seconds",
            "Seconds since each Celery worker last reported it was alive.",
            labels=["worker"],
        )
        current = now()
        for hostname, last_seen in heartbeats:
            ages.add_metric([hostname], (current - last_seen).total_seconds())
        yield ages


class BrokerCollector:
    """The broker's own queue length (messages not yet taken by a worker)."""

    def collect(self):
        from .health import broker_queue_length

        started = time.monotonic()
        length = broker_queue_length()
        gauge = GaugeMetricFamily(
            "zoomadmin_broker_queue_length",
            "Messages waiting in the Celery broker's default queue (-1 if it could not be read).",
        )
        gauge.add_metric([], -1 if length is None else length)
        yield gauge
        yield GaugeMetricFamily(
            "zoomadmin_broker_check_seconds",
            "How long reading the broker's queue length took.",
            value=time.monotonic() - started,
        )


class _DefaultRegistryCollector:
    """In single-process mode, the process's own counters live in the default registry."""

    def collect(self):
        yield from REGISTRY.collect()


def multiprocess_enabled():
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return bool(directory) and os.path.isdir(directory)


@contextlib.contextmanager
def _directory_lock(directory, *, exclusive):
    """Scrapes read the files under a shared lock, archiving rewrites them under an exclusive
    one: a scrape never sees a process's samples twice (archived, not yet removed) or not at all."""
    fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def archive_process(pid=None):
    """Fold a finished process's counter and histogram files into the directory's archive files.

    Called as the process exits (atexit; Celery's worker_process_shutdown for pool children),
    when it will count nothing more. Never raises: exiting matters more than the archive."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not multiprocess_enabled():
        return
    pid = pid or os.getpid()
    try:
        with _directory_lock(directory, exclusive=True):
            for kind in ("counter", "histogram"):
                own = os.path.join(directory, f"{kind}_{pid}.db")
                if not os.path.exists(own):
                    continue
                archive = os.path.join(directory, f"{kind}_archive.db")
                files = [f for f in (archive, own) if os.path.exists(f)]
                merged = multiprocess.MultiProcessCollector.merge(files, accumulate=False)
                scratch = archive + ".new"  # not *.db: a scrape must not read it half-written
                with contextlib.suppress(FileNotFoundError):
                    os.remove(scratch)
                out = MmapedDict(scratch)
                try:
                    for metric in merged:
                        for sample in metric.samples:
                            key = mmap_key(
                                metric.name,
                                sample.name,
                                list(sample.labels),
                                list(sample.labels.values()),
                                metric.documentation,
                            )
                            out.write_value(key, sample.value, 0.0)
                finally:
                    out.close()
                os.replace(scratch, archive)
                os.remove(own)
    except Exception:
        logger.warning("could not archive the metrics of process %s", pid, exc_info=True)


class _LockedMultiProcessCollector(multiprocess.MultiProcessCollector):
    def collect(self):
        with _directory_lock(self._path, exclusive=False):
            return list(super().collect())


if multiprocess_enabled():
    atexit.register(archive_process)


def render():
    """(body, content_type) of the metrics page: every process's samples plus the gauges."""
    registry = CollectorRegistry()
    if multiprocess_enabled():
        _LockedMultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistryCollector())
    registry.register(DatabaseCollector())
    if getattr(settings, "METRICS_BROKER_QUEUE", True):
        registry.register(BrokerCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


# --- A worker host's own /metrics -------------------------------------------------------------


def render_processes():
    """(body, content_type) of this host's process samples only: what the worker host counted
    (requests to Zoom, their latency, 429s). The database and broker gauges are the web's
    /metrics: every host would report the same figures."""
    registry = CollectorRegistry()
    if multiprocess_enabled():
        _LockedMultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistryCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _metrics_app(token):
    def app(environ, start_response):
        import hmac

        if environ.get("PATH_INFO") != "/metrics" or environ["REQUEST_METHOD"] not in (
            "GET",
            "HEAD",
        ):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found: this port serves /metrics only.\n"]
        scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if token and not (
            scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), token.encode())
        ):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"Authentication required.\n"]
        body, content_type = render_processes()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    return app


def serve_worker_metrics(port, address, token):
    """Serve this host's process metrics at http://ADDRESS:PORT/metrics from a daemon thread;
    returns the server (its `server_port` is the port, when PORT is 0) or None if the port
    could not be taken (logged: a worker without metrics beats no worker)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # Prometheus scrapes every 15 s: not worth a line
            pass

    class DaemonServer(WSGIServer):
        daemon_threads = True

    if not token:
        address = "127.0.0.1"  # no token: nothing beyond this host may read it
    try:
        server = make_server(
            address,
            port,
            _metrics_app(token),
            server_class=DaemonServer,
            handler_class=QuietHandler,
        )
    except OSError as e:
        logger.error("worker metrics: cannot listen on %s:%s (%s)", address, port, e)
        return None
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("worker metrics at http://%s:%s/metrics", address, server.server_port)
    return server
