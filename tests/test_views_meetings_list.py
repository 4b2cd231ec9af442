"""The meetings list: search, filters, sort, keyset pages, a constant number of queries, and the
live badges fragment."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils.timezone import now

from meetings.models import Meeting
from meetings.views.pagination import PER_PAGE

from .dashboard_data import make_account, make_meeting

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, viewer):
    client.force_login(viewer)
    return client


def bulk_meetings(account, count, *, start=None, first_id=90_000_000_000):
    """COUNT meetings one minute apart (bulk_create: fast), newest first by start time."""
    start = start or now()
    rows = [
        Meeting(
            account=account,
            zoom_id=first_id + i,
            topic=f"Meeting number {i:05d}",
            host_email=f"host{i % 7}@example.com",
            status="waiting",
            start_time=start - timedelta(minutes=i),
        )
        for i in range(count)
    ]
    return Meeting.objects.bulk_create(rows)


def rows_of(response):
    return list(response.context["page"].rows)


def walk(client, params, direction="next"):
    """Every page from the first, following the Next (or from the last, Previous) cursors."""
    seen = []
    response = client.get(reverse("meetings"), params)
    pages = 0
    while True:
        pages += 1
        assert pages < 100, "pagination does not end"
        seen.extend(m.pk for m in rows_of(response))
        cursor = response.context["page"].next_cursor
        if not cursor:
            return seen, response
        response = client.get(reverse("meetings"), {**params, "after": cursor})


def walk_back(client, params, last):
    """Every row from LAST (a response) back to the first page, following the Previous
    cursors, in the list's order."""
    back = []
    response = last
    while True:
        back = [m.pk for m in rows_of(response)] + back
        cursor = response.context["page"].previous_cursor
        if not cursor:
            return back
        response = client.get(reverse("meetings"), {**params, "before": cursor})


def test_the_list_shows_meetings_newest_first_with_host_and_status(signed_in):
    account = make_account()
    older = make_meeting(account, topic="Older", start_time=now() - timedelta(days=1))
    newer = make_meeting(account, topic="Newer", status="started", start_time=now())
    response = signed_in.get(reverse("meetings"))
    assert response.status_code == 200
    assert rows_of(response) == [newer, older]
    page = response.content.decode()
    assert "host<wbr>@example.com" in page  # may break before its "@" in a narrow column
    assert 'class="badge badge-live"' in page


def test_search_finds_by_topic_words_by_id_with_spaces_and_by_host(signed_in):
    account = make_account()
    target = make_meeting(
        account, topic="Board meeting Q3", zoom_id=85123456789, host_email="chair@example.com"
    )
    make_meeting(account, topic="Something else", host_email="other@example.com")
    for q in ("board", "851 2345 6789", "851-2345-6789", "85123456789", "chair@example"):
        assert rows_of(signed_in.get(reverse("meetings"), {"q": q})) == [target], q


def test_the_first_digits_of_a_meeting_id_find_it(signed_in):
    account = make_account()
    eleven = make_meeting(account, topic="Eleven", zoom_id=85123456789)
    nine = make_meeting(account, topic="Nine", zoom_id=851234567)
    make_meeting(account, topic="Other", zoom_id=96123456789)
    numbered = make_meeting(account, topic="Room 851 retro", zoom_id=77123456789)

    def found(q):
        return {m.topic for m in rows_of(signed_in.get(reverse("meetings"), {"q": q}))}

    assert found("8512 3456") == {"Eleven", "Nine"}
    assert found("851-234-5678") == {"Eleven"}
    assert found("85123456789") == {eleven.topic}
    assert found("851234567") == {nine.topic, eleven.topic}
    # three to five digits may be part of a topic too: both are found
    assert found("851") == {"Eleven", "Nine", numbered.topic}
    assert found("0851") == set()


def test_a_search_of_one_or_two_characters_still_finds_its_meetings(signed_in):
    # No trigram index can serve such a term (PostgreSQL scans the table for it, see
    # tests/test_search_indexes.py), but "Q3" or "HR" is a real search: it is not refused.
    account = make_account()
    q3 = make_meeting(account, topic="Board meeting Q3", start_time=now())
    hr = make_meeting(account, topic="HR sync", start_time=now() - timedelta(hours=1))
    make_meeting(account, topic="Something else", host_email="other@example.com")
    assert rows_of(signed_in.get(reverse("meetings"), {"q": "q3"})) == [q3]
    assert rows_of(signed_in.get(reverse("meetings"), {"q": "Hr"})) == [hr]
    assert rows_of(signed_in.get(reverse("meetings"), {"q": "3"})) == [q3]


def test_filters_by_status_type_account_and_date_range(signed_in):
    acme, other = make_account("Acme"), make_account("Other")
    live = make_meeting(acme, status="started", start_time=now())
    recurring = make_meeting(acme, type=8, start_time=now() - timedelta(days=3))
    elsewhere = make_meeting(other, start_time=now() - timedelta(days=10))
    get = signed_in.get
    assert rows_of(get(reverse("meetings"), {"status": "started"})) == [live]
    assert rows_of(get(reverse("meetings"), {"type": "8"})) == [recurring]
    assert rows_of(get(reverse("meetings"), {"account": other.pk})) == [elsewhere]
    day = (now() - timedelta(days=3)).date().isoformat()
    assert rows_of(get(reverse("meetings"), {"start_from": day, "start_to": day})) == [recurring]
    # Two accounts: the account column and filter appear.
    assert "Account" in get(reverse("meetings")).content.decode()


def test_sorting_by_topic_and_oldest_first(signed_in):
    account = make_account()
    b = make_meeting(account, topic="Bravo", start_time=now())
    a = make_meeting(account, topic="Alpha", start_time=now() - timedelta(hours=1))
    assert rows_of(signed_in.get(reverse("meetings"), {"sort": "topic"})) == [a, b]
    assert rows_of(signed_in.get(reverse("meetings"), {"sort": "oldest"})) == [a, b]
    assert rows_of(signed_in.get(reverse("meetings"), {"sort": "newest"})) == [b, a]


@pytest.mark.parametrize("sort", ["live", "newest", "oldest", "topic"])
def test_keyset_pages_cover_every_meeting_once_in_order_even_without_start_times(signed_in, sort):
    account = make_account()
    created = bulk_meetings(account, PER_PAGE * 2 + 7)
    # Live ones spread over the list: "live first" reads them as a part of their own, and the
    # pages cross from that part to the rest (60 live: the crossing is inside page 2).
    Meeting.objects.filter(pk__in=[m.pk for m in created[::2][:60]]).update(status="started")
    # Meetings with no fixed time (and equal start times) are where naive keyset pagination
    # loses or repeats rows.
    undated = [make_meeting(account, start_time=None, topic=f"Undated {i}") for i in range(4)]
    same = [make_meeting(account, start_time=created[10].start_time, topic="Tie") for _ in range(3)]
    expected_count = len(created) + len(undated) + len(same)

    seen, last = walk(signed_in, {"sort": sort})
    assert len(seen) == expected_count
    assert len(set(seen)) == expected_count

    # And back: Previous from the last page walks the same rows in reverse page order.
    assert walk_back(signed_in, {"sort": sort}, last) == seen


@pytest.mark.parametrize("sort", ["newest", "live"])
def test_a_page_costs_the_same_few_queries_at_any_size_and_depth(
    client, operator, django_assert_max_num_queries, sort
):
    client.force_login(operator)
    account = make_account()
    bulk_meetings(account, 3)
    counts = []
    # A search reads a part in two queries (its walk, then its rows), so searches are compared
    # with searches: the page's count of queries stays the same at any size and depth.
    with django_assert_max_num_queries(10) as small:
        client.get(reverse("meetings"), {"q": "Meeting", "sort": sort})
    counts.append(len(small))
    bulk_meetings(account, 400, start=now() - timedelta(days=30), first_id=91_000_000_000)
    with django_assert_max_num_queries(10) as first:
        response = client.get(reverse("meetings"), {"q": "Meeting", "sort": sort})
    counts.append(len(first))
    cursor = response.context["page"].next_cursor
    for _ in range(5):
        response = client.get(reverse("meetings"), {"q": "Meeting", "after": cursor, "sort": sort})
        cursor = response.context["page"].next_cursor
    with django_assert_max_num_queries(10) as deep:
        response = client.get(reverse("meetings"), {"q": "Meeting", "after": cursor, "sort": sort})
    counts.append(len(deep))
    assert len(response.context["page"].rows) == PER_PAGE
    if sort == "live" and connection.vendor != "postgresql":
        # The first pages read the live part (none here) and then the others: one query more
        # where a page crosses from one part to the next, and no more at any depth.
        assert counts[0] == counts[1] == counts[2] + 1, counts
    elif sort == "live":
        # PostgreSQL reads a search of at most SEARCH_COUNT_CAP matches in one query, every
        # part at once (pagination._matches_first): no query more where parts meet.
        assert counts[0] == counts[1] == counts[2], counts
    else:
        assert counts[0] == counts[1] == counts[2], counts


def test_live_meetings_come_first_by_default_then_the_others_newest_first(signed_in):
    account = make_account()
    months_ahead = make_meeting(
        account, topic="Next quarter", start_time=now() + timedelta(days=90)
    )
    live = make_meeting(account, topic="On now", status="started", start_time=now())
    earlier_live = make_meeting(
        account, topic="Started earlier", status="started", start_time=now() - timedelta(hours=2)
    )
    yesterday = make_meeting(account, topic="Yesterday", start_time=now() - timedelta(days=1))

    response = signed_in.get(reverse("meetings"))

    assert rows_of(response) == [live, earlier_live, months_ahead, yesterday]
    sort_box = response.content.decode().split('name="sort"')[1]
    assert sort_box.index('value="live"') < sort_box.index('value="newest"')  # shown first


def test_the_pager_says_which_rows_show_and_brings_the_next_page_to_its_top(signed_in):
    bulk_meetings(make_account(), PER_PAGE * 2 + 7)
    first = signed_in.get(reverse("meetings"))
    assert "1–50 of 107" in first.content.decode()

    second = signed_in.get(reverse("meetings"), {"after": first.context["page"].next_cursor})
    third = signed_in.get(reverse("meetings"), {"after": second.context["page"].next_cursor})
    back = signed_in.get(reverse("meetings"), {"before": third.context["page"].previous_cursor})

    assert "51–100 of 107" in second.content.decode()
    assert "101–107 of 107" in third.content.decode()
    assert "51–100 of 107" in back.content.decode()
    assert 'hx-swap="outerHTML show:#results:top"' in second.content.decode()


def test_the_total_is_counted_with_a_cap(signed_in, monkeypatch):
    from meetings.views import pagination

    monkeypatch.setattr(pagination, "COUNT_CAP", 20)
    bulk_meetings(make_account(), 25)
    response = signed_in.get(reverse("meetings"))
    assert response.context["page"].total_capped
    assert "20+ meetings" in response.content.decode()


def test_a_search_is_counted_to_a_lower_cap(signed_in, monkeypatch):
    from meetings.views import pagination

    monkeypatch.setattr(pagination, "SEARCH_COUNT_CAP", 20)
    bulk_meetings(make_account(), 25)
    response = signed_in.get(reverse("meetings"), {"q": "Meeting number"})
    assert response.context["page"].total_capped
    assert "20+ meetings match" in response.content.decode()
    # the list without a search still counts to its own cap
    assert "25 meetings" in signed_in.get(reverse("meetings")).content.decode()


@pytest.mark.parametrize(
    "walk_rows, count_cap",
    [
        (7, 10),  # walks of 7 rows, then the matches after them read first
        (10_000, 10),  # walks that find every match
        (2_000, 500),  # counted whole (67 matches): read first at once, no walk
    ],
)
@pytest.mark.parametrize("sort", ["live", "newest", "oldest", "topic"])
def test_a_search_pages_through_its_matches_in_order_wherever_they_lie(
    signed_in, monkeypatch, sort, walk_rows, count_cap
):
    """A search walks each part of the list only so far, then reads the matches of the rest
    first; or reads them first at once when the count found few (PostgreSQL; SQLite filters
    as it scans): the pages are the same every way, every match once, in the list's order,
    forwards and back, across parts, NULL start times and ties."""
    from meetings.views import pagination

    monkeypatch.setattr(pagination, "SEARCH_WALK_ROWS", walk_rows)
    monkeypatch.setattr(pagination, "SEARCH_COUNT_CAP", count_cap)
    account = make_account()
    created = bulk_meetings(account, 420)
    Meeting.objects.filter(pk__in=[m.pk for m in created[::5][:40]]).update(status="started")
    undated = [
        make_meeting(account, start_time=None, topic=f"Undated {i}", host_email="host3@example.com")
        for i in range(4)
    ]
    tie = created[30].start_time
    for _ in range(3):
        make_meeting(account, start_time=tie, topic="Tie", host_email="host3@example.com")
    matches = set(
        Meeting.objects.filter(host_email="host3@example.com").values_list("pk", flat=True)
    )
    assert len(matches) == 60 + len(undated) + 3  # more than a page: two pages and a part

    everything, _ = walk(signed_in, {"sort": sort})
    expected = [pk for pk in everything if pk in matches]
    seen, last = walk(signed_in, {"sort": sort, "q": "host3@example"})
    assert seen == expected

    assert walk_back(signed_in, {"sort": sort, "q": "host3@example"}, last) == expected


def test_bad_filters_and_cursors_show_the_list_with_a_message_not_an_error(signed_in):
    account = make_account()
    meeting = make_meeting(account)
    for params in (
        {"status": "exploded"},
        {"type": "banana"},
        {"account": "999999"},
        {"start_from": "2024-13-45"},
        {"start_from": "2024-05-02", "start_to": "2024-05-01"},
        {"after": "not-a-cursor"},
        {"before": "eyJhIjoxfQ"},
        {"after": "WzEsIDBd"},
        {"q": "x" * 500},
        {"q": "99999999999999999999999999"},
        {"sort": "'; drop table meetings_meeting; --"},
    ):
        response = signed_in.get(reverse("meetings"), params)
        assert response.status_code == 200, params
    response = signed_in.get(reverse("meetings"), {"status": "exploded", "after": "zzz"})
    assert rows_of(response) == [meeting]
    assert "This filter is ignored" in response.content.decode()


def test_htmx_search_answers_only_the_results_fragment(signed_in):
    make_meeting(make_account(), topic="Fragment test")
    response = signed_in.get(
        reverse("meetings"), {"q": "Fragment"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">')
    assert "Fragment test" in html
    assert "<html" not in html


def test_a_history_restore_gets_the_whole_page(signed_in):
    make_meeting(make_account())
    response = signed_in.get(
        reverse("meetings"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="results",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert "<html" in response.content.decode()


def test_every_htmx_link_on_the_list_has_a_real_href(signed_in):
    import re

    bulk_meetings(make_account(), PER_PAGE + 5)
    page = signed_in.get(reverse("meetings")).content.decode()
    anchors = re.findall(r"<a [^>]*hx-get[^>]*>", page)
    assert anchors, "the pager links use htmx"
    for anchor in anchors:
        assert 'href="?' in anchor or 'href="/' in anchor, anchor


def test_live_badges_refresh_from_a_small_fragment_polled_every_few_seconds(signed_in):
    account = make_account()
    meeting = make_meeting(account)
    page = signed_in.get(reverse("meetings")).content.decode()
    assert f'hx-get="{reverse("meeting-badges")}?id={meeting.pk}"' in page
    assert 'hx-trigger="every 5s"' in page

    Meeting.objects.filter(pk=meeting.pk).update(status="started", livestream_status="live")
    response = signed_in.get(reverse("meeting-badges"), {"id": [meeting.pk, "junk", "-3"]})
    html = response.content.decode()
    assert f'id="mstatus-{meeting.pk}"' in html
    assert 'hx-swap-oob="true"' in html
    assert "Live" in html and "Streaming" in html


def test_the_search_box_takes_a_long_paste_whole_and_says_it_is_too_long(signed_in):
    # A maxlength attribute made the browser cut a pasted search at 200 characters without a
    # word and search for the cut text; the form now says what is wrong, on the field too.
    make_meeting(make_account(), topic="Board prep")
    html = signed_in.get(reverse("meetings")).content.decode()
    assert "maxlength" not in html.split('id="id_q"')[1].split(">")[0]

    response = signed_in.get(reverse("meetings"), {"q": "x" * 260})
    html = response.content.decode()
    assert "Search: Ensure this value has at most 200 characters (it has 260)." in html
    assert 'value="' + "x" * 260 + '"' in html
    search_box = html.split('id="id_q"')[1].split(">")[0]
    assert 'aria-invalid="true"' in search_box
    assert 'aria-describedby="filter-errors"' in search_box
    assert 'id="filter-errors"' in html


def test_a_long_host_email_may_break_so_the_other_columns_stay_in_sight(signed_in):
    long_host = "verylonghostname" * 6 + "@example.com"
    make_meeting(make_account(), topic="Long host", host_email=long_host)
    html = signed_in.get(reverse("meetings")).content.decode()
    # Pieces of at most EMAIL_RUN characters; an ordinary address keeps its one break, before @.
    from meetings.templatetags.dashboard import EMAIL_RUN

    local = "verylonghostname" * 6
    run = EMAIL_RUN
    assert f"{local[:run]}<wbr>{local[run : 2 * run]}<wbr>" in html
    assert "<wbr>@example.com" in html
