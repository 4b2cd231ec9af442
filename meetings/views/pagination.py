"""Keyset ("seek") pagination for lists that reach 100,000 rows.

OFFSET pagination reads and throws away every row before the page, so page 2,000 of the meetings
list costs what reading 100,000 rows costs. Here a page starts after the last row of the previous
one (`WHERE (start_time, id) < (:last_start, :last_id) ORDER BY start_time DESC, id DESC LIMIT 51`),
which an index on (start_time, id) answers in the same few milliseconds at any depth. The total is
counted with a cap (`SELECT COUNT(*) FROM (... LIMIT 10001)`), so it stays bounded too; past the
cap the page says "10,000+".

The sort key may be nullable (meetings without a start time): the database decides whether NULLs
sort first or last (`connection.features.nulls_order_largest`), and the seek condition follows it,
so the order the index gives and the order the pages walk are the same.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F, Q

PER_PAGE = 50
COUNT_CAP = 10_000


@dataclass
class Page:
    rows: list
    next_cursor: str | None
    previous_cursor: str | None
    total: int
    total_capped: bool
    # The 0-based place of the page's first row in the whole list, or None when unknown (a
    # cursor from before places were carried). Rows added or removed meanwhile shift it a little:
    # it is what the pager says ("51-100 of 200"), never what is read.
    start: int | None = 0

    @property
    def total_display(self):
        return f"{COUNT_CAP:,}+" if self.total_capped else f"{self.total:,}"

    @property
    def first_shown(self):
        return None if self.start is None or not self.rows else self.start + 1

    @property
    def last_shown(self):
        return None if self.start is None else self.start + len(self.rows)


def _encode(field, row, place=None):
    value = getattr(row, field)
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    fields = [value, row.pk, place, getattr(row, "_segment", 0)]
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _extra(cursor, index, limit):
    """A cursor's place (index 2) or segment (index 3), or None (an older or forged cursor)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(fields, list) or len(fields) <= index:
        return None
    number = fields[index]
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < limit:
        return None
    return number


def _place(cursor):
    """The 0-based place of a cursor's row in the whole list, or None."""
    return _extra(cursor, 2, 2**31)


def _decode(model, field, cursor):
    """(value, pk) from a cursor, or None when it is not one of ours (then: the first page)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk = json.loads(raw)[:2]
        if not isinstance(pk, int) or isinstance(pk, bool) or not 0 < pk < 2**63:
            return None
        if value is not None:
            value = model._meta.get_field(field).to_python(value)
        # Our cursors hold aware UTC times and text without NUL; a forged one may not: a naive
        # or far-offset time, or one at the calendar's end, fails in the database (a 500, found
        # by tests/test_hostile_input.py), as does NUL in text on PostgreSQL.
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return None
            value = value.astimezone(UTC)
        if isinstance(value, str) and "\x00" in value:
            return None
    except (
        ValueError,
        TypeError,
        OverflowError,
        binascii.Error,
        ValidationError,
        UnicodeDecodeError,
    ):
        return None
    return value, pk


def _nulls_first(descending):
    largest = connection.features.nulls_order_largest
    return largest if descending else not largest


def _order(field, descending):
    if descending:
        return [F(field).desc(), F("pk").desc()]
    return [F(field).asc(), F("pk").asc()]


def _seek(queryset, field, position, descending, limit):
    """Up to LIMIT rows that come after POSITION ((value, pk), or None for the start) in the
    order `field` then pk, both descending or both ascending.

    The condition carries a redundant bound (`start_time <= :v AND (start_time < :v OR
    (start_time = :v AND id < :pk))`): without it PostgreSQL cannot turn the OR into an index
    range and walks the index from the top, which at row 90,000 of 100,000 took 125 ms instead
    of 0.1 ms. NULLs sort before or after every value depending on the database and direction;
    they are a segment of their own, read by a second query only when the page reaches it.
    """
    order = _order(field, descending)
    if position is None:
        return list(queryset.order_by(*order)[:limit])
    value, pk = position
    op, bound = ("lt", "lte") if descending else ("gt", "gte")
    nullable = queryset.model._meta.get_field(field).null
    nulls_first = _nulls_first(descending)
    if value is None:
        rows = list(
            queryset.filter(**{f"{field}__isnull": True, f"pk__{op}": pk}).order_by(*order)[:limit]
        )
        if nulls_first and len(rows) < limit:
            rest = queryset.filter(**{f"{field}__isnull": False}).order_by(*order)
            rows += list(rest[: limit - len(rows)])
        return rows
    after = Q(**{f"{field}__{bound}": value}) & (
        Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"pk__{op}": pk})
    )
    rows = list(queryset.filter(after).order_by(*order)[:limit])
    if nullable and not nulls_first and len(rows) < limit:
        rest = queryset.filter(**{f"{field}__isnull": True}).order_by(*order)
        rows += list(rest[: limit - len(rows)])
    return rows


def _walk(queryset, parts, field, segment, position, descending, limit, *, back=False):
    """Up to LIMIT rows from POSITION in part SEGMENT on, into the next parts (going back: the
    previous ones) when one runs out; each row knows its part (for its cursor)."""
    step = -1 if back else 1
    rows = []
    while 0 <= segment < len(parts) and len(rows) < limit:
        got = _seek(queryset.filter(parts[segment]), field, position, descending, limit - len(rows))
        for row in got:
            row._segment = segment
        rows += got
        segment, position = segment + step, None
    return rows


def paginate(
    queryset,
    *,
    field,
    descending=True,
    after=None,
    before=None,
    per_page=PER_PAGE,
    parts=None,
):
    """One page of `queryset` ordered by `field` then pk, starting after/before a cursor.

    `parts`: filters (Q) of a list shown in parts one after the other, each in that order, e.g.
    the live meetings first, then the others ("Live first"). Each part is one index range.

    Two queries whatever the depth: the page (per_page + 1 rows, to know if there is more) and
    the capped count; a third only on the page where a nullable key's NULL rows begin, or where
    one part gives way to the next. Cursors that do not decode are ignored (the first page),
    never an error.
    """
    model = queryset.model
    parts = parts or [Q()]
    total = queryset.order_by()[: COUNT_CAP + 1].count()
    going_back = False
    position = None
    cursor = None
    if before:
        position = _decode(model, field, before)
        going_back = position is not None
        cursor = before if going_back else None
    if position is None and after:
        position = _decode(model, field, after)
        cursor = after if position is not None else None
    segment = 0
    if cursor is not None:
        segment = _extra(cursor, 3, len(parts))
        if segment is None:
            segment = 0

    if going_back:
        rows = _walk(
            queryset, parts, field, segment, position, not descending, per_page + 1, back=True
        )
        more_before = len(rows) > per_page
        rows = rows[:per_page][::-1]
        has_previous, has_next = more_before, True
        place = _place(before)
        start = 0 if not more_before else None if place is None else max(place - len(rows), 0)
    else:
        rows = _walk(queryset, parts, field, segment, position, descending, per_page + 1)
        has_next = len(rows) > per_page
        rows = rows[:per_page]
        has_previous = position is not None
        place = _place(after) if position is not None else -1
        start = None if place is None else place + 1

    return Page(
        rows=rows,
        next_cursor=(
            _encode(field, rows[-1], None if start is None else start + len(rows) - 1)
            if rows and has_next
            else None
        ),
        previous_cursor=_encode(field, rows[0], start) if rows and has_previous else None,
        total=min(total, COUNT_CAP),
        total_capped=total > COUNT_CAP,
        start=start,
    )
