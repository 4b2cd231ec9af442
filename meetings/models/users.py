from datetime import timedelta

from django.db import models
from django.utils.timezone import now

# A user Zoom refused webinars to (no webinar licence) is asked again after this long, not on
# every sync: a licence is assigned by hand, rarely, and each refusal costs a Medium request.
WEBINAR_LICENCE_RECHECK = timedelta(days=1)


class ZoomUser(models.Model):
    """A user of a connected Zoom account as the dashboard last learned of them: their address
    (Zoom's events name a host by id only) and whether Zoom lets them have webinars.

    Written by the sync (users it lists) and by the webhook task (a host an event names that the
    mirror did not know, fetched with `GET /users/{userId}`); only when something changed."""

    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.CASCADE)
    zoom_user_id = models.CharField("Zoom user id", max_length=64)
    email = models.CharField(max_length=254, blank=True)
    # None: not asked yet. False: Zoom answered code 200 ("Cannot use webinar API, you need to
    # subscribe webinar plan") when last asked, at webinar_licence_checked_at.
    webinar_licence = models.BooleanField(null=True, blank=True)
    webinar_licence_checked_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            # The sync's and the webhook task's lookups: one account's user by Zoom's id.
            models.UniqueConstraint(
                fields=["account", "zoom_user_id"], name="zoom_user_unique_per_account"
            )
        ]

    def __str__(self):
        return self.email or self.zoom_user_id

    def webinar_licence_known_missing(self, at=None):
        """Whether Zoom refused this user's webinars recently enough not to ask again yet."""
        at = at or now()
        return (
            self.webinar_licence is False
            and self.webinar_licence_checked_at is not None
            and at - self.webinar_licence_checked_at < WEBINAR_LICENCE_RECHECK
        )
