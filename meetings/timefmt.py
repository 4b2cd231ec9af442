"""How the dashboard writes a moment in words it keeps (job summaries, audit records, names):
the pages' own format, "Sun 6 Dec 2026, 22:58 UTC", so a summary read beside a page says a time
the same way. Stored words are in UTC and say so: whoever reads them later, in whatever zone.

`format_moment` is Django's date format for the few letters the pages use (D j M Y H i s T),
without its per-call costs (the format parsed again, every name translated again, the zone's
ambiguity checked again): a list page writes each row's start time twice (its text and its UTC
title), and Django's formatter was a fifth of the page's time (issue 13's 1,000,000-meeting
list). Any other letter, an escape or a naive moment goes to Django's formatter itself."""

from datetime import UTC

from django.utils.dateformat import format as date_format
from django.utils.dateformat import re_formatchars
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.translation import get_language

# The pages' format for a date and time (templates: date:"D j M Y, H:i"); meetings/templatetags.
DATETIME = "D j M Y, H:i"
DATETIME_SECONDS = "D j M Y, H:i:s"

LETTERS = frozenset("DjMYHisT")
_parsed = {}
_names = {}


def _pieces(fmt):
    """FMT as (letter or None, text) pieces, or None when it needs Django's formatter."""
    if fmt not in _parsed:
        pieces = re_formatchars.split(fmt)
        letters = pieces[1::2]
        if "\\" in fmt or not set(letters) <= LETTERS:
            _parsed[fmt] = None
        else:
            _parsed[fmt] = [
                (piece, None) if i % 2 else (None, piece) for i, piece in enumerate(pieces) if piece
            ]
    return _parsed[fmt]


def _names_now():
    """The day and month abbreviations in the active language (translated once each)."""
    language = get_language()
    if language not in _names:
        _names[language] = (
            [str(WEEKDAYS_ABBR[day]) for day in range(7)],
            [""] + [str(MONTHS_3[month]).title() for month in range(1, 13)],
        )
    return _names[language]


def format_moment(moment, fmt):
    """MOMENT (an aware datetime) in Django's date format FMT, as `dateformat.format` writes it."""
    pieces = _pieces(fmt)
    if pieces is None or moment.tzinfo is None:
        return date_format(moment, fmt)
    days, months = _names_now()
    out = []
    for letter, text in pieces:
        if letter is None:
            out.append(text)
        elif letter == "D":
            out.append(days[moment.weekday()])
        elif letter == "j":
            out.append(str(moment.day))
        elif letter == "M":
            out.append(months[moment.month])
        elif letter == "Y":
            out.append(f"{moment.year:04d}")
        elif letter == "H":
            out.append(f"{moment.hour:02d}")
        elif letter == "i":
            out.append(f"{moment.minute:02d}")
        elif letter == "s":
            out.append(f"{moment.second:02d}")
        else:  # "T": Django's own (a zone's name, or none at an ambiguous moment)
            out.append(date_format(moment, "T"))
    return "".join(out)


def in_words(moment, *, seconds=False):
    """A moment as stored words, in UTC: "Sun 6 Dec 2026, 22:58 UTC"."""
    return format_moment(moment.astimezone(UTC), DATETIME_SECONDS if seconds else DATETIME) + " UTC"
