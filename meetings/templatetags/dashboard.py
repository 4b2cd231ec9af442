"""Small template helpers for the dashboard: badges, Zoom's meeting types, query strings."""

from datetime import UTC

from django import template
from django.core.exceptions import ObjectDoesNotExist
from django.utils.dateformat import format as date_format
from django.utils.html import conditional_escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.timezone import get_current_timezone_name, localtime, now

from ..models import MeetingStatus
from ..models.approvals import ApprovalState
from ..timefmt import format_moment, in_words

register = template.Library()

# The longest run of an email address shown without a place to break it (see email_breaks). At
# 24, a live meeting's row on the overview (topic, host, and "Tue 8 Dec, 00:49" for one that
# started on another day) was a pixel wider than its card at 1280 pixels.
EMAIL_RUN = 16

# A second person's decisions that the job line and the timeline name (decided_by).
DECIDED = (ApprovalState.APPROVED, ApprovalState.REJECTED)

# Zoom's meeting `type` numbers (Create a meeting: "type").
MEETING_TYPES = {
    1: "Instant",
    2: "Scheduled",
    3: "Recurring, no fixed time",
    4: "Personal meeting ID",
    8: "Recurring, fixed time",
    10: "Screen share only",
}
WEBINAR_TYPES = {5: "Webinar", 6: "Recurring, no fixed time", 9: "Recurring, fixed time"}

STATUS_BADGES = {
    "started": "badge-live",
    "waiting": "badge-waiting",
    "ended": "badge-ended",
    "deleted": "badge-deleted",
    "live": "badge-live",
    "stopped": "badge-muted",
    "queued": "badge-info",
    "running": "badge-info",
    "succeeded": "badge-ok",
    "failed": "badge-error",
    "cancelled": "badge-muted",
    "awaiting": "badge-waiting",
    "connected": "badge-ok",
    "needs_reconnect": "badge-error",
    "disconnected": "badge-muted",
    "pending": "badge-info",
    "sending": "badge-info",
    "sent": "badge-ok",
}


@register.filter
def badge_class(status):
    return STATUS_BADGES.get(str(status), "badge-muted")


@register.filter
def decided_by(action):
    """ "approved by alice" (or "rejected by alice") when ACTION waited for a second person, its
    own request or its batch's; else "". The queryset's `with_people()` brings them along."""
    for owner in (action, action.batch) if action.batch_id else (action,):
        try:
            approval = owner.approval
        except ObjectDoesNotExist:
            continue
        if approval.decided_by_id and approval.state in DECIDED:
            return f"{approval.get_state_display().lower()} by {approval.decided_by.get_username()}"
    return ""


@register.filter
def status_label(status):
    """A meeting's or webinar's status as the pages say it ("Live", not Zoom's "started")."""
    try:
        return MeetingStatus(str(status)).label
    except ValueError:
        return status


@register.filter
def meeting_type(number):
    return MEETING_TYPES.get(number, f"Type {number}")


@register.filter
def webinar_type(number):
    return WEBINAR_TYPES.get(number, f"Type {number}")


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with some parameters changed (None or "" removes them)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    encoded = urlencode(sorted(params.lists()), doseq=True)
    return f"?{encoded}" if encoded else "?"


@register.filter
def ago(value):
    """ "just now", "5 minutes ago", "2 hours, 3 minutes ago" (in the past) for a datetime."""
    if not value:
        return ""
    if (now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"


@register.simple_tag
def ago_time(value):
    """`value|ago` in a <time> element that static/meetings/app.js keeps true while the page
    stays open: a followed page answered "nothing changed" for an hour must not still say "just
    now". data-now is when the server rendered it, so the browser's clock need not agree with
    the server's. The full time is the element's title. Empty for no value."""
    if not value:
        return ""
    return format_html(
        '<time datetime="{}" title="{}" data-ago data-now="{}">{}</time>',
        value.isoformat(),
        date_format(localtime(value), "Y-m-d H:i:s T"),
        now().isoformat(),
        ago(value),
    )


@register.filter
def email_breaks(value):
    """An email address that may break before its "@" when the column is narrow, rather than
    one letter from its end ("host@example.co" / "m"). The value is escaped first.

    A part longer than EMAIL_RUN characters (Zoom allows 128-character addresses) may also break
    every EMAIL_RUN characters: one unbreakable 100-character host pushed the start time and type
    columns of every row out of sight, behind a sideways scroll. Ordinary addresses are unchanged.
    """
    text = "" if value is None else str(value)
    parts = [
        "<wbr>".join(
            conditional_escape(part[i : i + EMAIL_RUN]) for i in range(0, len(part), EMAIL_RUN)
        )
        for part in text.split("@")
    ]
    return mark_safe("<wbr>@".join(parts))  # noqa: S308 - each piece escaped above


# How `when` writes a moment, in the page's time zone (the user's: meetings/middleware.py).
WHEN_FORMATS = {
    "full": "D j M Y, H:i",
    "zone": "D j M Y, H:i T",
    "seconds": "D j M Y, H:i:s",
    "seconds_zone": "D j M Y, H:i:s T",
    "compact": "j M, H:i:s",
    "time": "H:i:s",
}


@register.simple_tag
def when(value, style="full"):
    """A moment in a <time> element: in the page's time zone, with UTC on hover (its title) and
    in its datetime attribute. "short" is the time alone for today, else the day too ("Sun 6
    Dec, 22:58", with the year when it is not this year): a meeting live since yesterday must
    not read as one that started this evening. "full", "seconds" and "time" as WHEN_FORMATS.
    "—" for no value."""
    if not value:
        return "—"
    local = localtime(value)
    if style == "short":
        today = localtime(now()).date()
        if local.date() == today:
            fmt = "H:i"
        elif local.year == today.year:
            fmt = "D j M, H:i"
        else:
            fmt = "j M Y, H:i"
    else:
        fmt = WHEN_FORMATS[style]
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.astimezone(UTC).isoformat(),
        in_words(value, seconds=True),
        format_moment(local, fmt),
    )


@register.filter
def name_breaks(value):
    """A dotted or underscored name ("meeting.live_streaming_started") that may break only
    after its dots and underscores, never mid-word (with .event-name's overflow-wrap: normal).
    The value is escaped first."""
    text = conditional_escape("" if value is None else str(value))
    return mark_safe(text.replace(".", ".<wbr>").replace("_", "_<wbr>"))  # noqa: S308 - escaped


@register.simple_tag
def tz_label():
    """The time zone the page's times are shown in (the person's: meetings/timezones.py), for
    table headings."""
    return get_current_timezone_name()
