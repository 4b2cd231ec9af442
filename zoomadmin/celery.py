import os

from celery import Celery

from .broker import install as install_atomic_filesystem_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomadmin.settings")
# The embedded broker's messages are written atomically (see zoomadmin/broker.py).
install_atomic_filesystem_broker()

app = Celery("zoomadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
