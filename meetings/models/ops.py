from django.db import models
from django.utils.timezone import now


class WorkerHeartbeat(models.Model):
    """A Celery worker's "still alive" mark, written every WORKER_HEARTBEAT_INTERVAL_SECONDS.

    The health check reads it: a worker is stale after WORKER_HEARTBEAT_STALE_SECONDS without a
    beat. Written by the worker itself (meetings/tasks/ops.py) into the database every process
    shares, so it works with the filesystem broker and Redis alike; a worker that shuts down
    cleanly deletes its row.
    """

    hostname = models.CharField(max_length=255, unique=True)  # Celery's node name, worker@host
    pid = models.PositiveIntegerField(null=True, blank=True)
    started = models.DateTimeField(default=now)
    last_seen = models.DateTimeField(default=now)

    class Meta:
        ordering = ["hostname"]

    def __str__(self):
        return f"{self.hostname} (seen {self.last_seen:%Y-%m-%d %H:%M:%S})"
