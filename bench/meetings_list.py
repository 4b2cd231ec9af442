"""
2. The meetings list over 100,000 mirrored meetings in PostgreSQL, beside the Django admin's
changelist of the same model: server time (median, p95) and SQL queries per page for the first
page, a filtered page (live meetings), a search and a deep page (row 90,001).

Server time is the request's time through the whole Django stack (middleware, session, view,
template) measured around `django.test.Client` in this process, so network and client time are
left out. The dashboard's list pages by keyset (bench: `after=` the cursor of row 90,000), the
admin by OFFSET (`p=`); both show 50 rows a page here (the admin's 100 are set to 50 for the
comparison) and both are signed in as users who may see the page.
"""

import time
from types import SimpleNamespace

from .harness import BenchError, Result, fmt, median, ms, percentile

TITLE = "2. Meetings list over 100,000 mirrored meetings (PostgreSQL) vs the Django admin"
PROFILES = ("service",)
TIMEOUT = 300

MEETINGS = 100_000
DEEP_ROW = 90_000  # the deep page starts after this row
PER_PAGE = 50
WARMUP = 3
SAMPLES = 30


def run(ctx, options):
    from django.contrib import admin
    from django.test import Client

    from meetings.models import Meeting

    from .data import seed_meetings
    from .harness import make_user, sandbox_account

    account = sandbox_account("Bench account")
    ctx.say(f"writing {MEETINGS:,} meetings")
    seed_meetings(account, MEETINGS)
    if Meeting.objects.count() != MEETINGS:
        raise BenchError("the mirror does not hold the meetings just written")

    operator = Client()
    operator.force_login(make_user("bench-viewer", role="viewer"))
    superuser = Client()
    superuser.force_login(make_user("bench-admin", superuser=True))
    # Same page size on both sides, so the comparison is of the paging, not of the row count.
    admin.site._registry[Meeting].list_per_page = PER_PAGE

    deep = deep_row()
    pages = [
        ("first page", "/meetings/", "/admin/meetings/meeting/", None),
        (
            "filtered: live now",
            "/meetings/?status=started",
            "/admin/meetings/meeting/?status__exact=started",
            None,
        ),
        ("search: 'sales'", "/meetings/?q=sales", "/admin/meetings/meeting/?q=sales", None),
        (
            f"deep: row {DEEP_ROW + 1:,}",
            f"/meetings/?after={deep.cursor}",
            f"/admin/meetings/meeting/?p={DEEP_ROW // PER_PAGE + 1}",
            deep.first_pk,
        ),
    ]
    rows, ratios, worst_queries = [], [], []
    for label, dashboard_url, admin_url, expect_pk in pages:
        ctx.say(label)
        mine = measure(operator, dashboard_url, expect_pk, f"/meetings/{expect_pk}/")
        theirs = measure(
            superuser, admin_url, expect_pk, f"/admin/meetings/meeting/{expect_pk}/change/"
        )
        worst_queries.append(mine["queries"])
        ratio = theirs["median"] / mine["median"] if mine["median"] else float("nan")
        rows.append(
            [
                label,
                fmt(ms(mine["median"])),
                fmt(ms(mine["p95"])),
                fmt(mine["queries"]),
                fmt(ms(theirs["median"])),
                fmt(ms(theirs["p95"])),
                fmt(theirs["queries"]),
                f"{ratio:.1f}×",
            ]
        )
        ratios.append(ratio)

    result = Result(
        "meetings_list",
        TITLE,
        setup=(
            f"{MEETINGS:,} meetings, {PER_PAGE} rows a page, {SAMPLES} timed requests per page "
            f"after {WARMUP} warm-up ones; DEBUG off"
        ),
        columns=[
            "page",
            "list median ms",
            "list p95 ms",
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
            " / ".join(f"{r:.1f}×" for r in ratios) + " (first / filtered / search / deep)",
        )
    )
    result.check(
        "SQL queries per page, any page",
        "/".join(str(q) for q in worst_queries),
        "constant, ≤ 10",
        len(set(worst_queries)) == 1 and max(worst_queries) <= 10,
    )
    return result


def deep_row():
    """The cursor of row DEEP_ROW in the list's default order, and the pk of the row after it."""
    from django.db.models import F

    from meetings.models import Meeting
    from meetings.views.pagination import _encode

    order = [F("start_time").desc(), F("pk").desc()]
    values = list(
        Meeting.objects.order_by(*order).values_list("start_time", "pk")[
            DEEP_ROW - 1 : DEEP_ROW + 1
        ]
    )
    (start_time, pk), (_, next_pk) = values
    cursor = _encode("start_time", SimpleNamespace(start_time=start_time, pk=pk))
    return SimpleNamespace(cursor=cursor, first_pk=next_pk)


def measure(client, url, expect_pk, expect_link):
    """Median and p95 server time of URL, and the SQL queries of one request."""
    for _ in range(WARMUP):
        check(client.get(url), url, expect_pk, expect_link)
    with count_queries() as queries:
        check(client.get(url), url, expect_pk, expect_link)
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        check(response, url, expect_pk, expect_link)
    return {"median": median(times), "p95": percentile(times, 95), "queries": queries.count}


class count_queries:
    """Counts the SQL statements run inside it (an execute wrapper: works with DEBUG off)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

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
        raise BenchError(f"GET {url} does not show row {DEEP_ROW + 1:,} (pk {expect_pk})")
