"""Keyset ("seek") pagination for lists that reach 100,000 rows.

OFFSET pagination reads and throws away every row before the page, so page 2,000 of the meetings
list costs what reading 100,000 rows costs. Here a page starts after the last row of the previous
one (`WHERE (start_time, id) < (:last_start, :last_id) ORDER BY start_time DESC, id DESC LIMIT 51`),
which an index on (start_time, id) answers in the same few milliseconds at any depth. The total is
counted with a cap (`SELECT COUNT(*) FROM (... LIMIT 10001)`), so it stays bounded too; past the
cap the page says "10,000+".

A search (`search=`, a Q) is counted to a lower cap, and its pages do not trust the planner to
walk the list's order: PostgreSQL expects a search's matches to be spread evenly along the order
and walks it filtering, which at 1,000,000 meetings read 100,000 rows for a host's address whose
meetings were none of them live (issue 13). Each part is walked for SEARCH_WALK_ROWS rows at
most, the database saying which match; when the page is not full by then, the part's remaining
matches are read first (their own index) and sorted. A page costs the walk plus the matches
after it, never the whole list.

The sort key may be nullable (meetings without a start time): the database decides whether NULLs
sort first or last (`connection.features.nulls_order_largest`), and the seek condition follows it,
so the order the index gives and the order the pages walk are the same.
"""

import base64
import binascii
import functools
import json
import operator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber

PER_PAGE = 50
COUNT_CAP = 10_000
# A search's count stops here ("500+ meetings match"): counting 10,000 matches of a common word
# read ~80,000 rows of a 1,000,000-meeting mirror (50 ms), 1,000 of them 8,000 to 40,000 rows
# (8-9 ms, the most of a search's time in the database), and past a few hundred the number
# tells an operator only to narrow the search.
SEARCH_COUNT_CAP = 500
# How far a search walks a part in the list's order before reading the part's matches first: at
# 2,000 rows a page of 51 is found by walking when at least 1 row in 40 matches.
SEARCH_WALK_ROWS = 2_000


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
    cap: int = COUNT_CAP

    @property
    def total_display(self):
        return f"{self.cap:,}+" if self.total_capped else f"{self.total:,}"

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


def _ranges(queryset, field, position, descending):
    """The rows after POSITION ((value, pk), or None for the start) in the order `field` then
    pk, as conditions to read one after the other, each one index range.

    The condition carries a redundant bound (`start_time <= :v AND (start_time < :v OR
    (start_time = :v AND id < :pk))`): without it PostgreSQL cannot turn the OR into an index
    range and walks the index from the top, which at row 90,000 of 100,000 took 125 ms instead
    of 0.1 ms. NULLs sort before or after every value depending on the database and direction;
    they are a range of their own, read only when the page reaches it.
    """
    if position is None:
        return [Q()]
    value, pk = position
    op, bound = ("lt", "lte") if descending else ("gt", "gte")
    nullable = queryset.model._meta.get_field(field).null
    nulls_first = _nulls_first(descending)
    if value is None:
        ranges = [Q(**{f"{field}__isnull": True, f"pk__{op}": pk})]
        if nulls_first:
            ranges.append(Q(**{f"{field}__isnull": False}))
        return ranges
    ranges = [
        Q(**{f"{field}__{bound}": value})
        & (Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"pk__{op}": pk}))
    ]
    if nullable and not nulls_first:
        ranges.append(Q(**{f"{field}__isnull": True}))
    return ranges


def _after(queryset, field, position, descending):
    """The rows after POSITION as one Q (for reading matches first, where no index range is
    needed)."""
    return functools.reduce(operator.or_, _ranges(queryset, field, position, descending))


def _ordered(queryset, field, position, descending):
    """The rows after POSITION (or from the start) in order, as querysets to read one after the
    other (`_ranges`)."""
    order = _order(field, descending)
    for condition in _ranges(queryset, field, position, descending):
        yield queryset.filter(condition).order_by(*order)


def _seek(queryset, field, position, descending, limit):
    """Up to LIMIT rows that come after POSITION ((value, pk), or None for the start) in the
    order `field` then pk, both descending or both ascending."""
    rows = []
    for ordered in _ordered(queryset, field, position, descending):
        if len(rows) >= limit:
            break
        rows += list(ordered[: limit - len(rows)])
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


def _search(queryset, parts, field, segment, position, descending, limit, search, *, back, walk):
    """`_walk` for the rows matching SEARCH (see the module's docstring): each part walked for
    SEARCH_WALK_ROWS rows at most (WALK: the count found many matches), and where a walk ends
    short of the page, the matches of the rest of the list read first, in one query."""
    step = -1 if back else 1
    found = []  # (pk, part)
    while walk and 0 <= segment < len(parts) and len(found) < limit:
        stopped = None
        for ordered in _ordered(queryset.filter(parts[segment]), field, position, descending):
            pks, stopped = _walk_part(ordered, field, descending, limit - len(found), search)
            found += [(pk, segment) for pk in pks]
            if stopped is not None or len(found) >= limit:
                break
        if stopped is not None:
            position = stopped
            break
        segment, position = segment + step, None
    else:
        if walk:
            return _rows(queryset, found)
    if len(found) < limit and 0 <= segment < len(parts):
        found += _matches_first(
            queryset, parts, field, segment, position, descending, limit - len(found), search, step
        )
    return _rows(queryset, found)


def _rows(queryset, found):
    """The rows of FOUND's (pk, part) pairs, in that order, each knowing its part."""
    if not found:
        return []
    by_pk = queryset.filter(pk__in=[pk for pk, _ in found]).order_by().in_bulk()
    rows = []
    for pk, segment in found:
        if pk in by_pk:
            row = by_pk[pk]
            row._segment = segment
            rows.append(row)
    return rows


def _walk_part(ordered, field, descending, limit, search):
    """The pks of the first LIMIT rows matching SEARCH among ORDERED's first SEARCH_WALK_ROWS,
    and, when fewer matched and the walk went all that way, its last row's (value, pk) (else
    None). The database walks along the order's index, numbering the rows and saying which
    match; only the matches and that last row come back, and it stops at LIMIT + 1 matches."""
    inner, params = (
        ordered.annotate(
            _hit=ExpressionWrapper(search, output_field=BooleanField()),
            _n=Window(RowNumber(), order_by=_order(field, descending)),
        )
        .values_list("pk", field, "_hit", "_n")[:SEARCH_WALK_ROWS]
        .query.sql_with_params()
    )
    # INNER is Django's own SQL for the queryset, its values in PARAMS; its columns are named
    # here whatever aliases Django gave them. No ORDER BY outside: a sort would wait for the
    # whole walk, where the filter over the subquery passes its rows on in their order and
    # the LIMIT stops the walk; the rows are put in order by their number here all the same.
    sql = (
        f"SELECT w.row_pk, w.sort_key, w.hit, w.n FROM ({inner}) "  # noqa: S608
        "AS w (row_pk, sort_key, hit, n) WHERE w.hit OR w.n = %s LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, SEARCH_WALK_ROWS, limit + 1])
        rows = sorted(cursor.fetchall(), key=lambda row: row[3])
    pks = [pk for pk, _, hit, _ in rows if hit][:limit]
    if len(pks) >= limit:
        return pks, None
    last = next(((key, pk) for pk, key, _, n in rows if n == SEARCH_WALK_ROWS), None)
    return pks, last


def _matches_first(queryset, parts, field, segment, position, descending, limit, search, step):
    """(pk, part) of the first LIMIT rows matching SEARCH from POSITION in part SEGMENT on, read
    from the matches (the search's own index), never by walking the list's order: the matches
    of every part still to come in a subquery that OFFSET 0 keeps apart (PostgreSQL plans it
    on its own, without the order), numbered by part, then sorted."""
    order = list(range(segment, len(parts))) if step == 1 else list(range(segment, -1, -1))
    conditions = []
    for rank, index in enumerate(order):
        condition = parts[index]
        if rank == 0 and position is not None:
            condition = condition & _after(queryset, field, position, descending)
        conditions.append(condition)
    where = conditions[0]
    for condition in conditions[1:]:
        where |= condition
    if len(conditions) == 1:
        rank = Value(0, output_field=IntegerField())
    else:
        whens = [When(c, then=Value(r)) for r, c in enumerate(conditions)]
        rank = Case(*whens, output_field=IntegerField())
    inner, params = (
        queryset.filter(search)
        .filter(where)
        .annotate(_rank=rank)
        .order_by()
        .values_list("pk", field, "_rank")
        .query.sql_with_params()
    )
    direction = "DESC" if descending else "ASC"
    # INNER is Django's own SQL for the queryset, its values in PARAMS; its columns are named
    # here (whatever aliases Django gave them): the pk, the sort key and the part's rank.
    sql = (
        f"SELECT m.row_pk, m.part FROM ({inner} OFFSET 0) "  # noqa: S608
        f"AS m (row_pk, sort_key, part) "
        f"ORDER BY m.part, m.sort_key {direction}, m.row_pk {direction} LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [(pk, order[rank]) for pk, rank in cursor.fetchall()]


def paginate(
    queryset,
    *,
    field,
    descending=True,
    after=None,
    before=None,
    per_page=PER_PAGE,
    parts=None,
    search=None,
):
    """One page of `queryset` ordered by `field` then pk, starting after/before a cursor.

    `parts`: filters (Q) of a list shown in parts one after the other, each in that order, e.g.
    the live meetings first, then the others ("Live first"). Each part is one index range.

    Two queries whatever the depth: the page (per_page + 1 rows, to know if there is more) and
    the capped count; a third only on the page where a nullable key's NULL rows begin, or where
    one part gives way to the next. Cursors that do not decode are ignored (the first page),
    never an error.

    `search`: a Q that narrows the list (a search box's), counted to SEARCH_COUNT_CAP and read
    as the module's docstring says: a walk of each part, the matches after it, then the page's
    rows by pk (two or three queries a part instead of one).
    """
    model = queryset.model
    parts = parts or [Q()]
    cap = COUNT_CAP
    if search:
        cap = SEARCH_COUNT_CAP
        total = queryset.filter(search).order_by()[: cap + 1].count()
        if connection.vendor != "postgresql":
            # SQLite's planner is not the one that walked: a search is a filter like any other.
            queryset, search = queryset.filter(search), None
    else:
        search = None
        total = queryset.order_by()[: cap + 1].count()
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

    def read(descending, back=False):
        if search is None:
            return _walk(
                queryset, parts, field, segment, position, descending, per_page + 1, back=back
            )
        return _search(
            queryset,
            parts,
            field,
            segment,
            position,
            descending,
            per_page + 1,
            search,
            back=back,
            walk=total > cap,
        )

    if going_back:
        rows = read(not descending, back=True)
        more_before = len(rows) > per_page
        rows = rows[:per_page][::-1]
        has_previous, has_next = more_before, True
        place = _place(before)
        start = 0 if not more_before else None if place is None else max(place - len(rows), 0)
    else:
        rows = read(descending)
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
        total=min(total, cap),
        total_capped=total > cap,
        start=start,
        cap=cap,
    )
