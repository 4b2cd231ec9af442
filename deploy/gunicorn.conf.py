"""gunicorn's settings for the web process: `gunicorn -c deploy/gunicorn.conf.py`.

Every deployment runs the web process with this file (systemd's zoomadmin-web.service, the
compose file's web service, tests/browser/test_production.py), so what was tested is what runs.
Each value may be overridden from the environment; docs/deploy.md says when to.
"""

import multiprocessing
import os

wsgi_app = "zoomadmin.wsgi:application"

# Behind the proxy: listen where only the proxy reaches (127.0.0.1 on the proxy's host, or the
# container network). GUNICORN_BIND=0.0.0.0:8000 in a container.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Sync workers: each page reads the local mirror and answers in milliseconds (the dashboard never
# calls Zoom while a page waits), so a process per request in flight is enough; 2 per core + 1
# keeps the cores busy while some wait on PostgreSQL. WEB_CONCURRENCY is the usual override.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))

# A request still running after 30 s is stuck (no page does slow work): the worker is restarted
# rather than holding a slot. A graceful stop (deploy, SIGTERM) lets requests in flight finish.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Longer than the proxy's upstream keep-alive, so gunicorn never closes a connection the proxy is
# about to reuse (nginx's default keepalive_timeout to upstreams is 60 s, ours is 4 s).
keepalive = 5

# Recycle workers now and then: a slow leak in any library costs a restart, not an outage.
max_requests = 2000
max_requests_jitter = 200

# Forwarded headers: gunicorn believes X-Forwarded-Proto only from these addresses (Django's own
# TRUSTED_PROXIES check, meetings.middleware, applies the same list to X-Forwarded-For).
forwarded_allow_ips = os.environ.get("TRUSTED_PROXIES", "127.0.0.1,::1")

# Access log to stdout (journald or the container's log), errors to stderr.
accesslog = "-"
errorlog = "-"
# No query strings: the dashboard's have nothing secret, but logs should not grow a habit.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

# Heartbeat files in memory: a container's overlay filesystem can stall gunicorn's liveness
# check when the disk is busy.
if os.path.isdir("/dev/shm"):  # noqa: S108 - mkstemp files (unique names, mode 0600)
    worker_tmp_dir = "/dev/shm"  # noqa: S108


def child_exit(server, worker):
    """A dead worker's metric samples stop counting as live (prometheus-client multiprocess).
    The arbiter never loads the app, so the folder comes from the settings, read here."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomadmin.settings")
    from django.conf import settings
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(settings.PROMETHEUS_MULTIPROC_DIR))
