from django.db import models
from django.db.models.functions import Upper
from django.utils.timezone import now

from ..fields import EncryptedTextField
from ..timefmt import in_words

# A set stream key, as pages, the admin and exports show it: the same dots whatever the key.
STREAM_KEY_MASK = "••••••••"


class MeetingStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    STARTED = "started", "Live"
    ENDED = "ended", "Ended"
    DELETED = "deleted", "Deleted"


class LiveStreamStatus(models.TextChoices):
    STOPPED = "stopped", "Stopped"
    LIVE = "live", "Live"


class Resolution(models.TextChoices):
    AUTO = "", "Zoom's default"
    P720 = "720p", "720p"
    P1080 = "1080p", "1080p"


class MirroredObject(models.Model):
    """What meetings and webinars share: identity, host, schedule and status."""

    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.CASCADE)
    # Meeting and webinar ids exceed 32 bits (NOTES.md): BigIntegerField, never IntegerField.
    zoom_id = models.BigIntegerField("Zoom id")
    uuid = models.CharField("current instance UUID", max_length=100, blank=True)
    host_id = models.CharField(max_length=100, blank=True)
    host_email = models.CharField(max_length=254, blank=True)
    topic = models.CharField(max_length=300, blank=True)
    type = models.PositiveSmallIntegerField(default=2)
    status = models.CharField(
        max_length=10, choices=MeetingStatus.choices, default=MeetingStatus.WAITING
    )
    start_time = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField("duration (minutes)", null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    join_url = models.URLField(max_length=1024, blank=True)
    last_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="when a sync last changed this row"
    )
    last_event_at = models.DateTimeField(null=True, blank=True)
    # When Zoom sent the settings update (meeting.updated, webinar.updated) last applied: an
    # older one delivered after it changes nothing. Kept apart from last_event_at, which orders
    # status reports (mirror.record_details).
    details_event_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=now)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.topic or '(no topic)'} ({self.zoom_id})"

    @property
    def is_live(self):
        return self.status == MeetingStatus.STARTED


class LiveStreamMirror(models.Model):
    """A custom live stream as the dashboard last knew it: meetings and webinars alike (Zoom's
    `.../livestream` settings; the status from the dashboard's own start and stop, and for
    meetings from Zoom's live_streaming events). The key is stored encrypted, shown masked."""

    stream_url = models.CharField(max_length=1024, blank=True)
    stream_key = EncryptedTextField(blank=True)
    page_url = models.CharField(max_length=1024, blank=True)
    resolution = models.CharField(max_length=5, choices=Resolution.choices, blank=True)
    livestream_status = models.CharField(
        max_length=10, choices=LiveStreamStatus.choices, default=LiveStreamStatus.STOPPED
    )

    class Meta:
        abstract = True

    @property
    def has_stream_configured(self):
        return bool(self.stream_url and self.page_url)

    @property
    def masked_stream_key(self):
        """The stream key as it may be shown: that one is set, and nothing of it (not its last
        characters, not its length: issue 15)."""
        return STREAM_KEY_MASK if self.stream_key else ""


class Meeting(MirroredObject, LiveStreamMirror):
    class Meta:
        ordering = ["-start_time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "zoom_id"], name="meeting_unique_per_account"
            )
        ]
        indexes = [
            # Meetings list, default order and the "date range" filter.
            models.Index(fields=["-start_time", "-id"], name="meeting_start_idx"),
            # Meetings list filtered by status (Live now on the overview), newest first.
            models.Index(fields=["status", "-start_time", "-id"], name="meeting_status_start_idx"),
            # Meetings list filtered by account, newest first.
            models.Index(
                fields=["account", "-start_time", "-id"], name="meeting_account_start_idx"
            ),
            # Meetings list filtered by type (issue 13, 1,000,000 meetings): the live part of
            # "live first" seeks on (type, status, start time), the rest and the other orders
            # on (type, start time). Without them the live part of "Recurring, no fixed time"
            # (none live) read every live row, and the rest of "Recurring, fixed time" first
            # read past every meeting without a start time (1 s and 0.9 s a page).
            models.Index(
                fields=["type", "status", "-start_time", "-id"], name="meeting_type_status_idx"
            ),
            models.Index(fields=["type", "-start_time", "-id"], name="meeting_type_start_idx"),
            # (A host's address typed in the search box: the prefix index of migrations 0029
            # and 0030, which replaced a plain index on host_email that the planner walked.)
            # Webhook processing and past-meeting linking look meetings up by Zoom id alone.
            models.Index(fields=["zoom_id"], name="meeting_zoom_id_idx"),
            # Meetings list sorted by topic: keyset pages seek on (topic, id).
            models.Index(fields=["topic", "id"], name="meeting_topic_idx"),
            # The admin's search by instance UUID: Django's "=uuid" is
            # UPPER(uuid::text) = UPPER(term). (Topic and host: trigram indexes, migration 0007.)
            models.Index(Upper("uuid"), name="meeting_uuid_upper_idx"),
        ]


class Webinar(MirroredObject, LiveStreamMirror):
    """A webinar. Zoom's webinar API has no status: it is derived from webhook events. Nor does
    Zoom send a webinar live stream event (NOTES.md lists meeting.live_streaming_* only): the
    stream's status is what the dashboard's own start and stop did, and stops with the webinar."""

    class Meta:
        ordering = ["-start_time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "zoom_id"], name="webinar_unique_per_account"
            )
        ]
        indexes = [
            # Webinars list, default order.
            models.Index(fields=["-start_time", "-id"], name="webinar_start_idx"),
            # Webinars list filtered by status.
            models.Index(fields=["status", "-start_time"], name="webinar_status_start_idx"),
            # Webhook processing looks webinars up by Zoom id alone.
            models.Index(fields=["zoom_id"], name="webinar_zoom_id_idx"),
        ]


class PastMeeting(models.Model):
    """One ended meeting instance: the 14 fields of Zoom's past-meeting-details answer."""

    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.CASCADE)
    meeting = models.ForeignKey(
        Meeting, null=True, blank=True, on_delete=models.SET_NULL, related_name="past_instances"
    )
    uuid = models.CharField("instance UUID", max_length=100, unique=True)
    zoom_id = models.BigIntegerField("meeting id")
    host_id = models.CharField(max_length=100, blank=True)
    type = models.PositiveSmallIntegerField(null=True, blank=True)
    topic = models.CharField(max_length=300, blank=True)
    user_name = models.CharField(max_length=200, blank=True)
    user_email = models.CharField(max_length=254, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField("duration (minutes)", null=True, blank=True)
    total_minutes = models.PositiveIntegerField(null=True, blank=True)
    participants_count = models.PositiveIntegerField(null=True, blank=True)
    dept = models.CharField("department", max_length=200, blank=True)
    source = models.CharField(max_length=100, blank=True)
    fetched_at = models.DateTimeField(default=now)
    # When its participants were last fetched (on demand: Zoom's list is paged and personal).
    participants_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_time"]
        indexes = [
            # The meeting page's "past instances", newest first.
            models.Index(fields=["meeting", "-start_time"], name="past_meeting_meeting_idx"),
            # Linking a fetched instance to its meeting, and lookups by meeting id.
            models.Index(fields=["zoom_id"], name="past_meeting_zoom_id_idx"),
        ]

    def __str__(self):
        when = in_words(self.start_time) if self.start_time else "unknown start"
        return f"{self.topic or self.zoom_id} @ {when}"


class MirrorLock(models.Model):
    """A lease that lets one process at a time do a piece of mirror work (an account's sync).

    Used when there is no Redis: it works across processes on SQLite and PostgreSQL alike. The
    holder renews it while it works; a holder that died lets it lapse, so the next sync can run.
    """

    name = models.CharField(max_length=100, unique=True)
    holder = models.CharField(max_length=64)
    acquired_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} until {self.expires_at:%H:%M:%S}"


class PastParticipant(models.Model):
    """One participant of an ended instance, as Zoom listed them when last fetched (in Zoom's
    order). Fetched again, the list is replaced whole."""

    past_meeting = models.ForeignKey(
        PastMeeting, on_delete=models.CASCADE, related_name="participants"
    )
    position = models.PositiveIntegerField()
    zoom_user_id = models.CharField(
        "Zoom user id", max_length=100, blank=True, help_text="blank: joined without signing in"
    )
    name = models.CharField(max_length=300, blank=True)
    user_email = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["past_meeting", "position"]
        constraints = [
            # The past meeting page's list pages along (past_meeting, position).
            models.UniqueConstraint(
                fields=["past_meeting", "position"], name="past_participant_position"
            )
        ]

    def __str__(self):
        return self.name or self.user_email or "(no name)"
