"""How the dashboard writes a moment in words it keeps (job summaries, audit records, names):
the pages' own format, "Sun 6 Dec 2026, 22:58 UTC", so a summary read beside a page says a time
the same way. Stored words are in UTC and say so: whoever reads them later, in whatever zone."""

from datetime import UTC

from django.utils.dateformat import format as date_format

# The pages' format for a date and time (templates: date:"D j M Y, H:i"); meetings/templatetags.
DATETIME = "D j M Y, H:i"
DATETIME_SECONDS = "D j M Y, H:i:s"


def in_words(moment, *, seconds=False):
    """A moment as stored words, in UTC: "Sun 6 Dec 2026, 22:58 UTC"."""
    return date_format(moment.astimezone(UTC), DATETIME_SECONDS if seconds else DATETIME) + " UTC"
