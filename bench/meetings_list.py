"""
2. The meetings list over 1,000,000 mirrored meetings in PostgreSQL (issue 13's scale point:
every page, search included, at p95 ≤ 50 ms), beside the Django admin's changelist of the same
model for the four pages both have.

Every page kind of the list is timed: the default order (live first), each sort, each filter, a
date range, deep pages (row 900,001 of each order, and going back from it), and every kind of
search (words of a topic, a rare topic word, a host's email, the first digits of a meeting id, a
whole id, and a search with a filter). Each is checked to show what it claims (its expected row,
or at least one row).

Server time is the request's time through the whole Django stack (middleware, session, view,
template) measured around `django.test.Client` in this process, so network and client time are
left out. The dashboard's list pages by keyset (`after=` a cursor), the admin by OFFSET (`p=`);
both show 50 rows a page here (the admin's 100 are set to 50 for the comparison) and both are
signed in as users who may see the page. The admin is timed with fewer samples: at a million
rows its deep page and search take seconds each.
"""

import re
import time
from types import SimpleNamespace

from .harness import BenchError, Result, fmt, median, ms, percentile

TITLE = "2. Meetings list over 1,000,000 mirrored meetings (PostgreSQL) vs the Django admin"
PROFILES = ("service",)
TIMEOUT = 1200

MEETINGS = 1_000_000
DEEP_ROW = 900_000  # the deep pages start after this row
PER_PAGE = 50
WARMUP = 2
SAMPLES = 20
ADMIN_WARMUP = 1
ADMIN_SAMPLES = 3
TARGET_P95 = 0.050  # seconds, every page of the list
# A row's link on the dashboard's list or the admin's changelist.
ROW_LINK = re.compile(rb'href="/(?:admin/meetings/meeting|meetings)/[0-9]+/')


def run(ctx, options):
    from django.contrib import admin
    from django.test import Client

    from meetings.models import Meeting

    from .data import seed_meetings
    from .harness import make_user, sandbox_account

    account = sandbox_account("Bench account")
    ctx.say(f"writing {MEETINGS:,} meetings")
    started = time.monotonic()
    seed_meetings(account, MEETINGS)
    seeded_in = time.monotonic() - started
    if Meeting.objects.count() != MEETINGS:
        raise BenchError("the mirror does not hold the meetings just written")
    ctx.say(f"written in {seeded_in:.0f} s")

    operator = Client()
    operator.force_login(make_user("bench-viewer", role="viewer"))
    superuser = Client()
    superuser.force_login(make_user("bench-admin", superuser=True))
    # Same page size on both sides, so the comparison is of the paging, not of the row count.
    admin.site._registry[Meeting].list_per_page = PER_PAGE

    live = Meeting.objects.filter(status="started")
    not_live = Meeting.objects.exclude(status="started")
    some = Meeting.objects.order_by("pk")[MEETINGS // 3]
    deep_default = deep_row(not_live, "start_time", True, DEEP_ROW - live.count(), segment=1)
    deep_newest = deep_row(Meeting.objects.all(), "start_time", True, DEEP_ROW)
    deep_oldest = deep_row(Meeting.objects.all(), "start_time", False, DEEP_ROW)
    # the page before row 900,001 of "newest" ends with row 899,999 (its cursor is row 900,000)
    before_deep = deep_row(Meeting.objects.all(), "start_time", True, DEEP_ROW - 1)
    deep_topic = deep_row(Meeting.objects.all(), "topic", False, DEEP_ROW)
    # filtered to waiting, "live first" has nothing live: its rows are all in the second part
    deep_status = deep_row(
        Meeting.objects.filter(status="waiting"), "start_time", True, DEEP_ROW // 2, segment=1
    )
    id_digits = str(some.zoom_id)
    # (label, dashboard URL, admin URL or None, pk the page must show or None: any row)
    pages = [
        ("first page (live first)", "/meetings/", "/admin/meetings/meeting/", None),
        ("sort: newest", "/meetings/?sort=newest", None, None),
        ("sort: oldest", "/meetings/?sort=oldest", None, None),
        ("sort: topic A–Z", "/meetings/?sort=topic", None, None),
        (
            "filter: live now",
            "/meetings/?status=started",
            "/admin/meetings/meeting/?status__exact=started",
            None,
        ),
        ("filter: deleted", "/meetings/?status=deleted", None, None),
        ("filter: recurring, no fixed time", "/meetings/?type=3", None, None),
        ("filter: account", f"/meetings/?account={account.pk}", None, None),
        (
            "filter: one week",
            "/meetings/?start_from={}&start_to={}".format(*week_ahead()),
            None,
            None,
        ),
        ("search: topic 'sales'", "/meetings/?q=sales", "/admin/meetings/meeting/?q=sales", None),
        ("search: topic 'board prep'", "/meetings/?q=board+prep", None, None),
        ("search: one topic '#123457'", "/meetings/?q=%23123457", None, None),
        ("search: host email", "/meetings/?q=host17%40bench.example", None, None),
        ("search: id, first 4 digits", f"/meetings/?q={id_digits[:4]}", None, None),
        ("search: id, first 7 digits", f"/meetings/?q={id_digits[:7]}", None, some.pk),
        (
            "search: whole id, spaced",
            f"/meetings/?q={id_digits[:3]}+{id_digits[3:7]}+{id_digits[7:]}",
            None,
            some.pk,
        ),
        ("search + filter: 'sales', live", "/meetings/?q=sales&status=started", None, None),
        ("search + sort: 'sales', topic A–Z", "/meetings/?q=sales&sort=topic", None, None),
        (
            f"deep: row {DEEP_ROW + 1:,} (live first)",
            f"/meetings/?after={deep_default.cursor}",
            None,
            deep_default.first_pk,
        ),
        (
            f"deep: row {DEEP_ROW + 1:,}, newest",
            f"/meetings/?sort=newest&after={deep_newest.cursor}",
            # the admin's order is the same: newest first
            f"/admin/meetings/meeting/?p={DEEP_ROW // PER_PAGE + 1}",
            deep_newest.first_pk,
        ),
        (
            f"deep: row {DEEP_ROW + 1:,}, oldest",
            f"/meetings/?sort=oldest&after={deep_oldest.cursor}",
            None,
            deep_oldest.first_pk,
        ),
        (
            f"deep: row {DEEP_ROW + 1:,}, topic A–Z",
            f"/meetings/?sort=topic&after={deep_topic.cursor}",
            None,
            deep_topic.first_pk,
        ),
        (
            f"deep: row {DEEP_ROW // 2 + 1:,} of 'waiting'",
            f"/meetings/?status=waiting&after={deep_status.cursor}",
            None,
            deep_status.first_pk,
        ),
        (
            f"back: the page before row {DEEP_ROW + 1:,}",
            f"/meetings/?sort=newest&before={deep_newest.cursor}",
            None,
            before_deep.pk,
        ),
    ]
    rows, ratios, worst_queries, misses = [], [], [], []
    p95s, sql_p95s, sql_misses = [], [], []
    for label, dashboard_url, admin_url, expect_pk in pages:
        ctx.say(label)
        mine = measure(operator, dashboard_url, expect_pk, f"/meetings/{expect_pk}/")
        worst_queries.append((label.startswith("search"), mine["queries"]))
        p95s.append(mine["p95"])
        if mine["p95"] > TARGET_P95:
            misses.append(label)
        sql_p95s.append(mine["database_p95"])
        if mine["database_p95"] > TARGET_P95:
            sql_misses.append(label)
        theirs = {"median": None, "p95": None, "queries": None}
        ratio = None
        if admin_url:
            theirs = measure(
                superuser,
                admin_url,
                expect_pk,
                f"/admin/meetings/meeting/{expect_pk}/change/",
                warmup=ADMIN_WARMUP,
                samples=ADMIN_SAMPLES,
            )
            ratio = theirs["median"] / mine["median"] if mine["median"] else float("nan")
            ratios.append(ratio)
        ctx.say(
            f"  list {ms(mine['median']):.1f} / {ms(mine['p95']):.1f} ms"
            f" (SQL {ms(mine['database']):.1f} / {ms(mine['database_p95']):.1f} ms)"
            + (f", admin {ms(theirs['median']):.0f} ms" if admin_url else "")
        )
        rows.append(
            [
                label,
                fmt(ms(mine["median"])),
                fmt(ms(mine["p95"])),
                fmt(ms(mine["database"])),
                fmt(ms(mine["database_p95"])),
                fmt(mine["queries"]),
                fmt(ms(theirs["median"])) if theirs["median"] is not None else "—",
                fmt(ms(theirs["p95"])) if theirs["p95"] is not None else "—",
                fmt(theirs["queries"]),
                f"{ratio:.1f}×" if ratio is not None else "—",
            ]
        )

    result = Result(
        "meetings_list",
        TITLE,
        setup=(
            f"{MEETINGS:,} meetings (written in {seeded_in:.0f} s by INSERT ... SELECT "
            f"generate_series), {PER_PAGE} rows a page, {SAMPLES} timed requests per page after "
            f"{WARMUP} warm-up ones (admin: {ADMIN_SAMPLES} after {ADMIN_WARMUP}); DEBUG off"
        ),
        columns=[
            "page",
            "list median ms",
            "list p95 ms",
            "in SQL median ms",
            "in SQL p95 ms",
            "list queries",
            "admin median ms",
            "admin p95 ms",
            "admin queries",
            "admin ÷ list",
        ],
        rows=rows,
    )
    result.ratios.append(
        (
            "admin changelist ÷ dashboard list, median server time",
            " / ".join(f"{r:.1f}×" for r in ratios) + " (first / live / search / deep)",
        )
    )
    result.check(
        f"p95 server time, every page of the list ({len(pages)} pages)",
        f"worst {ms(max(p95s)):.1f} ms" + (f"; over: {', '.join(misses)}" if misses else ""),
        f"≤ {ms(TARGET_P95):.0f} ms",
        not misses,
    )
    result.check(
        "p95 time in the database, every page (the share a busy CPU inflates least)",
        f"worst {ms(max(sql_p95s)):.1f} ms"
        + (f"; over: {', '.join(sql_misses)}" if sql_misses else ""),
        f"≤ {ms(TARGET_P95):.0f} ms",
        not sql_misses,
    )
    # Ten on a page (session, user, permissions, connections, the capped count, the page, the
    # banner's connections), one more where a filter's banner asks about it; a search page
    # reads in two or three bounded statements where another reads in one (its walk, the
    # matches past it, the page's rows: meetings/views/pagination.py). None grows with depth.
    plain = [n for searching, n in worst_queries if not searching]
    searches = [n for searching, n in worst_queries if searching]
    result.check(
        "SQL queries per page, any page (searches)",
        f"{min(plain)}–{max(plain)} ({min(searches)}–{max(searches)})",
        "≤ 11 (≤ 12)",
        max(plain) <= 11 and max(searches) <= 12,
    )
    return result


def week_ahead():
    """The dates of the filter "from a week ahead, for a week" as the form takes them."""
    from datetime import date, timedelta

    start = date.today() + timedelta(days=7)
    return start.isoformat(), (start + timedelta(days=6)).isoformat()


def deep_row(queryset, field, descending, row, segment=0):
    """The cursor of row ROW (1-based) of QUERYSET in the list's order by FIELD (then pk), in
    part SEGMENT of the list, the pk of that row and of the row after it."""
    from meetings.views.pagination import _encode, _order

    order = _order(field, descending)
    values = list(queryset.order_by(*order).values_list(field, "pk")[row - 1 : row + 1])
    (value, pk), (_, next_pk) = values
    position = SimpleNamespace(pk=pk, _segment=segment, **{field: value})
    return SimpleNamespace(cursor=_encode(field, position), pk=pk, first_pk=next_pk)


def measure(client, url, expect_pk, expect_link, *, warmup=WARMUP, samples=SAMPLES):
    """Median and p95 server time of URL, and the SQL queries of one request."""
    for _ in range(warmup):
        check(client.get(url), url, expect_pk, expect_link)
    with count_queries() as queries:
        check(client.get(url), url, expect_pk, expect_link)
    times, in_database = [], []
    for _ in range(samples):
        with count_queries() as sql:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        in_database.append(sql.seconds)
        check(response, url, expect_pk, expect_link)
    return {
        "median": median(times),
        "p95": percentile(times, 95),
        "queries": queries.count,
        "database": median(in_database),
        "database_p95": percentile(in_database, 95),
    }


class count_queries:
    """Counts the SQL statements run inside it and the time they took (an execute wrapper:
    works with DEBUG off)."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0  # time spent in the database (sending, running, fetching)

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started

    def __enter__(self):
        from django.db import connection

        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        return self._wrapper.__exit__(*exc)


def check(response, url, expect_pk, expect_link):
    """A page that is not what it claims to be is not a figure."""
    if response.status_code != 200:
        raise BenchError(f"GET {url} answered {response.status_code}")
    if expect_pk is not None and expect_link.encode() not in response.content:
        raise BenchError(f"GET {url} does not show the row it should (pk {expect_pk})")
    if expect_pk is None and not ROW_LINK.search(response.content):
        raise BenchError(f"GET {url} shows no meeting")
