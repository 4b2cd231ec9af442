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


class KeyHolder(models.Model):
    """Which FIELD_ENCRYPTION_KEY list a running process holds, by key fingerprints (never the
    keys): what `rotate_encryption_key --status` reads to tell which phase of a rotation is safe
    across a rolling deploy (meetings/keyring.py). Each web and worker process reports itself
    every few minutes, on the database's clock; a row not refreshed in a while is a process gone.
    """

    process = models.CharField(max_length=255, unique=True)  # kind:host:pid
    kind = models.CharField(max_length=20)  # web | worker
    reads = models.CharField(max_length=1000)  # fingerprints, comma-separated, in its order
    writes = models.CharField(max_length=32)  # the fingerprint it encrypts with (its first)
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["process"]

    def __str__(self):
        return f"{self.process} (encrypts with {self.writes})"
