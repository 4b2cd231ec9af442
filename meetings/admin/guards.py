"""Change lists safe from hand-edited URLs (found by tests/test_hostile_input.py).

- The date drill-down (`date_hierarchy`): Django builds its range from `?<field>__year=` (and
  `__month`, `__day`) and only catches ValueError, so a year past 2**31 (OverflowError), 9999
  (whose next year does not exist) or the last day of 9999 answered 500.
- NUL in a filter value (`?status__exact=%00`): PostgreSQL refuses it in a query, a 500 when
  the list is counted, after Django's own checks of the filters. (Django's search copes; a NUL
  is refused wherever it is, as no value here can hold one.)

Such a URL now gets Django's own answer to bad filters: the list again with "?e=1" (and the
action list's CSV export answers 400).
"""

from django.contrib.admin.options import IncorrectLookupParameters

# One year of margin at each end: the range's end is the next year, and its midnight may be
# shifted by the time zone.
DATE_PARTS = {"year": (2, 9998), "month": (1, 12), "day": (1, 31)}


def check_changelist_query(params, date_field):
    """Raise IncorrectLookupParameters if the query has NUL or an out-of-range drill-down."""
    if any("\x00" in value for _, values in params.lists() for value in values):
        raise IncorrectLookupParameters("NUL in the query")
    if not date_field:
        return
    for part, (low, high) in DATE_PARTS.items():
        values = params.getlist(f"{date_field}__{part}")
        if not values:
            continue
        value = values[-1]  # the one Django uses
        if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
            raise IncorrectLookupParameters(f"{date_field}__{part} out of range")


class SafeChangeList:
    """ModelAdmin mixin: check the query before Django builds the change list."""

    def get_changelist_instance(self, request):
        check_changelist_query(request.GET, self.date_hierarchy)
        return super().get_changelist_instance(request)
