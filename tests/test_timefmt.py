"""meetings.timefmt.format_moment writes what Django's date format writes, for every format the
pages use, in every zone an operator may choose, through the year's turns and a DST change's
ambiguous and missing hours, in another language too."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation
from django.utils.dateformat import format as date_format

from meetings.templatetags.dashboard import WHEN_FORMATS
from meetings.timefmt import DATETIME, DATETIME_SECONDS, format_moment, in_words

FORMATS = [*WHEN_FORMATS.values(), DATETIME, DATETIME_SECONDS, "H:i", "D j M, H:i", "j M Y, H:i"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


def moments():
    """Every 7 hours 13 minutes 17 seconds of two years (the days, months and hours all
    visited), and the hours around Berlin's and New York's clock changes."""
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment.year < 2027:
        yield moment
        moment += timedelta(hours=7, minutes=13, seconds=17)
    for start in (datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 11, 1, 4, 0, tzinfo=UTC)):
        for minutes in range(0, 240, 15):
            yield start + timedelta(minutes=minutes)


@pytest.mark.parametrize("zone", ZONES)
def test_format_moment_writes_what_djangos_date_format_writes(zone):
    tz = ZoneInfo(zone)
    compared = 0
    for moment in moments():
        local = moment.astimezone(tz)
        for fmt in FORMATS:
            assert format_moment(local, fmt) == date_format(local, fmt), (local, fmt)
            compared += 1
    assert compared > 25_000


def test_the_names_follow_the_active_language_and_other_letters_go_to_django():
    moment = datetime(2026, 12, 6, 22, 58, 7, tzinfo=ZoneInfo("Europe/Berlin"))
    with translation.override("de"):
        assert format_moment(moment, DATETIME) == date_format(moment, DATETIME)
        assert format_moment(moment, "D") in ("So", "So.")
    assert format_moment(moment, DATETIME) == "Sun 6 Dec 2026, 22:58"
    # letters the fast path does not write, an escape, a naive moment: Django's formatter
    for fmt in ("N jS, P", r"\D\a\y j", "l, F"):
        assert format_moment(moment, fmt) == date_format(moment, fmt), fmt
    naive = datetime(2026, 12, 6, 22, 58)
    assert format_moment(naive, DATETIME) == "Sun 6 Dec 2026, 22:58"
    assert in_words(moment) == "Sun 6 Dec 2026, 21:58 UTC"
