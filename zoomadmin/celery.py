import os

from celery import Celery
from celery.signals import worker_init

from . import clock
from .broker import install as install_atomic_filesystem_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomadmin.settings")
# The embedded broker's messages are written atomically (see zoomadmin/broker.py).
install_atomic_filesystem_broker()

app = Celery("zoomadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Countdown messages wait by the database's clock, not each host's (zoomadmin/clock.py).
clock.install(app)


@worker_init.connect
def refuse_tasks_that_outlive_the_broker(**kwargs):
    """A worker does not stop on Django's system check errors: refuse here what E003 reports,
    before a message is taken (meetings.checks.tasks_outliving_the_visibility_timeout).
    SystemExit, because Celery logs and ignores an Exception raised by a signal handler."""
    from meetings.checks import check_tasks_end_before_the_broker_redelivers_them

    errors = check_tasks_end_before_the_broker_redelivers_them(None)
    if errors:
        raise SystemExit(f"zoomadmin.E003: {errors[0].msg} {errors[0].hint}")
