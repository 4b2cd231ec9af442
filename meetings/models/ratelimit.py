from django.db import models


class RateLimitBucket(models.Model):
    """The rate limiter's state in the database, used when there is no Redis (meetings.ratelimit).

    One row per account and label holds the label's "theoretical arrival time" (GCRA: the time,
    in epoch seconds, by which every request granted so far has been paid for); the row labelled
    "backoff" holds the time until which the whole account waits after Zoom answered 429. Rows
    labelled "daily:<label>" hold the time until which that label waits after Zoom said its daily
    cap is used up (meetings.budget; kept here even with Redis, for the connection's page).
    """

    account = models.ForeignKey("meetings.ZoomAccount", on_delete=models.CASCADE)
    label = models.CharField(max_length=16)
    value = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            # The limiter locks exactly these rows (select_for_update) for each request.
            models.UniqueConstraint(fields=["account", "label"], name="ratelimit_bucket_unique")
        ]

    def __str__(self):
        return f"{self.account_id}/{self.label}"
