"""Which time zone a person's pages use: the one they chose (UserPreferences), else their
browser's (the `tz` cookie static/meetings/app.js sets from Intl.DateTimeFormat), else the
server's TIME_ZONE. Times are stored in UTC; only their display changes. Exports and the audit
trail's stored words stay in UTC (meetings/timefmt.py)."""

import zoneinfo
from functools import cache
from urllib.parse import unquote

from django.conf import settings

COOKIE = "tz"


@cache
def zone_names():
    """Every IANA zone name this server knows, sorted (for the preference's choices)."""
    return sorted(zoneinfo.available_timezones())


def valid_zone(name):
    """The ZoneInfo for NAME, or None for a name that is not a known zone (a forged cookie)."""
    if not name or len(name) > 64 or name not in zone_names():
        return None
    return zoneinfo.ZoneInfo(name)


def zone_for(request):
    """(ZoneInfo, how it was chosen: "preference", "browser" or "server") for this request."""
    from .models import UserPreferences

    chosen = (
        UserPreferences.objects.filter(user=request.user)
        .values_list("time_zone", flat=True)
        .first()
        if request.user.is_authenticated
        else None
    )
    zone = valid_zone(chosen)
    if zone is not None:
        return zone, "preference"
    # app.js percent-encodes the name ("/" is not a cookie character everywhere).
    zone = valid_zone(unquote(request.COOKIES.get(COOKIE, "")))
    if zone is not None:
        return zone, "browser"
    return zoneinfo.ZoneInfo(settings.TIME_ZONE), "server"
