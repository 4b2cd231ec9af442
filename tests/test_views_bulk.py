"""Bulk actions from the meetings list: a dry run first, then one batch, its progress, cancel."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from meetings.models import Action, Batch

from .dashboard_data import make_account, make_meeting

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def account():
    return make_account()


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def preview(client, kind, meetings):
    return client.get(reverse("bulk-preview"), {"kind": kind, "ids": [m.pk for m in meetings]})


def test_the_dry_run_says_what_would_be_done_and_does_nothing(as_operator, account):
    live = [make_meeting(account, status="started", topic=f"Live {n}") for n in range(2)]
    waiting = make_meeting(account, status="waiting", topic="Not yet")
    response = preview(as_operator, "end_meeting", [*live, waiting])
    page = response.content.decode()
    assert response.status_code == 200
    assert "2 will be done, 1 skipped" in page
    assert "not live (waiting)" in page
    assert "End 2 meetings" in page
    assert Action.objects.count() == 0
    assert Batch.objects.count() == 0


def test_the_dry_run_of_stopping_streams_skips_those_not_streaming(as_operator, account):
    streaming = make_meeting(account, status="started", livestream_status="live")
    quiet = make_meeting(account, status="started")
    page = preview(as_operator, "stop_livestream", [streaming, quiet]).content.decode()
    assert "1 will be done, 1 skipped" in page
    assert "its live stream is not running" in page
    assert "Stop 1 live stream" in page


def test_the_dry_run_of_meetings_of_two_connections_is_grouped_by_connection(as_operator, account):
    mine = make_meeting(account, status="started", topic="Ours")
    other = make_account("Other")
    theirs = make_meeting(other, status="started", topic="Theirs")
    ended = make_meeting(other, status="ended", topic="Over")
    page = preview(as_operator, "end_meeting", [mine, theirs, ended]).content.decode()
    assert "2 will be done, 1 skipped" in page
    assert "2 Zoom connections, each at its own rate limit" in page
    # one heading per connection, with its own count, in the order first selected
    headings = re.findall(r'<h3 id="connection-\d+">([^<]*) <span class="muted">([^<]*)<', page)
    assert headings == [
        (account.name, "1 of 1 will be done"),
        ("Other", "1 of 2 will be done"),
    ]
    assert page.index("Ours") < page.index("Other") < page.index("Theirs")
    assert Action.objects.count() == 0


def test_one_batch_acts_on_meetings_of_several_connections_each_on_its_own(as_operator, account):
    other = make_account("Other")
    ours = [make_meeting(account, status="started") for _ in range(2)]
    theirs = [make_meeting(other, status="started") for _ in range(2)]
    response = as_operator.post(
        reverse("bulk-run"), {"kind": "end_meeting", "ids": [m.pk for m in [*ours, *theirs]]}
    )
    batch = Batch.objects.get()
    assert batch.account is None and batch.total == 4
    assert {(a.account_id, a.target_id) for a in batch.actions.all()} == {
        (m.account_id, m.zoom_id) for m in [*ours, *theirs]
    }
    page = as_operator.get(response["Location"]).content.decode()
    assert "2 connections" in page
    assert f"{account.name}: 0 of 2 finished" in page and "Other: 0 of 2 finished" in page
    listing = as_operator.get(reverse("batches")).content.decode()
    assert "Several connections" in listing


def test_meetings_of_a_connection_one_may_not_act_on_are_skipped_saying_so(
    as_operator, account, monkeypatch
):
    from meetings.views import bulk

    other = make_account("Other")
    monkeypatch.setattr(bulk, "may_act_on", lambda user, acc, kind: acc.pk != other.pk)
    mine = make_meeting(account, status="started")
    theirs = make_meeting(other, status="started")
    page = preview(as_operator, "end_meeting", [mine, theirs]).content.decode()
    assert "you may not act on this Zoom connection" in page
    assert "1 will be done, 1 skipped" in page
    as_operator.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [mine.pk, theirs.pk]})
    batch = Batch.objects.get()
    assert [a.target_id for a in batch.actions.all()] == [mine.zoom_id]
    assert batch.account == account  # all of it on one connection: the batch names it


def test_an_empty_or_bad_selection_goes_back_to_the_list_with_a_message(as_operator, account):
    response = as_operator.get(reverse("bulk-preview"), {"kind": "end_meeting"}, follow=True)
    assert "Select at least one meeting" in response.content.decode()
    response = as_operator.get(
        reverse("bulk-preview"), {"kind": "end_meeting", "ids": ["x", "1"]}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("meetings")
    response = as_operator.get(
        reverse("bulk-preview"), {"kind": "delete_everything", "ids": ["1"]}, follow=True
    )
    assert "Select a valid choice" in response.content.decode()
    response = as_operator.get(
        reverse("bulk-preview"), {"kind": "end_meeting", "ids": ["987654"]}, follow=True
    )
    assert "None of the selected meetings exists" in response.content.decode()


def test_cancelling_a_review_returns_to_the_list_as_it_was_filtered(as_operator, account):
    live = make_meeting(account, status="started", topic="Breakout A")
    # The list puts its current search and filters in the selection form.
    listed = as_operator.get(reverse("meetings"), {"q": "Breakout", "status": "started"})
    assert '<input type="hidden" name="back" value="q=Breakout&amp;status=started">' in (
        listed.content.decode()
    )
    back = "q=Breakout&status=started"
    page = as_operator.get(
        reverse("bulk-preview"), {"kind": "end_meeting", "ids": [live.pk], "back": back}
    ).content.decode()
    # Cancel, the back link, and the run's form (for a refusal) all lead to the same list.
    assert page.count('href="/meetings/?q=Breakout&amp;status=started"') == 2
    assert '<input type="hidden" name="back" value="q=Breakout&amp;status=started">' in page
    refused = as_operator.get(reverse("bulk-preview"), {"kind": "end_meeting", "back": back})
    assert refused["Location"] == "/meetings/?q=Breakout&status=started"


def test_the_way_back_to_the_list_cannot_lead_off_the_site(as_operator, account):
    live = make_meeting(account, status="started")
    for back in ("//evil.example/x", "https://evil.example", "/../admin/", "\\evil.example"):
        page = as_operator.get(
            reverse("bulk-preview"), {"kind": "end_meeting", "ids": [live.pk], "back": back}
        ).content.decode()
        for href in re.findall(r'<a class="btn" href="([^"]*)">Cancel</a>', page):
            assert href.startswith("/meetings/?")
        refused = as_operator.get(reverse("bulk-preview"), {"kind": "end_meeting", "back": back})
        assert refused["Location"].startswith("/meetings/")


def test_running_makes_one_batch_of_queued_actions_and_shows_its_progress(
    as_operator, operator, account
):
    live = [make_meeting(account, status="started") for _ in range(3)]
    waiting = make_meeting(account, status="waiting")
    response = as_operator.post(
        reverse("bulk-run"),
        {"kind": "end_meeting", "ids": [m.pk for m in [*live, waiting]]},
        REMOTE_ADDR="192.0.2.10",
    )
    batch = Batch.objects.get()
    assert response["Location"] == reverse("bulk", args=[batch.pk])
    actions = list(batch.actions.all())
    assert len(actions) == batch.total == 3
    assert {a.target_id for a in actions} == {m.zoom_id for m in live}
    for action in actions:
        assert (action.source, action.requested_by, action.client_ip) == (
            "bulk",
            operator,
            "192.0.2.10",
        )
    page = as_operator.get(response["Location"]).content.decode()
    assert "3 requested, 1 skipped" in page
    assert "0 of 3 finished" in page
    assert f'hx-get="{reverse("bulk", args=[batch.pk])}" hx-trigger="every 1s"' in page
    assert "Cancel what has not started" in page


def test_the_progress_poll_stops_with_286_when_every_row_is_final(as_operator, account):
    meeting = make_meeting(account, status="started")
    as_operator.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [meeting.pk]})
    batch = Batch.objects.get()
    assert as_operator.get(reverse("bulk", args=[batch.pk]), **HTMX).status_code == 200
    # The worker finishes it (here: the update a worker's run makes).
    Action.objects.filter(batch=batch).update(
        state="succeeded", result_summary="Meeting ended (confirmed)"
    )
    response = as_operator.get(reverse("bulk", args=[batch.pk]), **HTMX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "1 of 1 finished" in html and "Meeting ended (confirmed)" in html
    assert "hx-trigger" not in html
    assert "Cancel what has not started" not in html


def test_cancel_stops_what_has_not_started(as_operator, account):
    meetings = [make_meeting(account, status="started") for _ in range(3)]
    as_operator.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [m.pk for m in meetings]})
    batch = Batch.objects.get()
    response = as_operator.post(reverse("bulk-cancel", args=[batch.pk]), **HTMX)
    text = re.sub(r"<[^>]+>", "", response.content.decode())  # the time is a <time> element
    assert "Batch cancelled just now: 3 actions that had not started will not run." in text
    assert set(batch.actions.values_list("state", flat=True)) == {"cancelled"}
    # The next poll still says so: the notice is the batch's state, not the cancel's answer.
    poll = as_operator.get(reverse("bulk", args=[batch.pk]), **HTMX)
    assert poll.status_code == 286
    assert "3 actions that had not started will not run" in poll.content.decode()


def test_a_cancel_while_some_run_says_those_finish(as_operator, account):
    meetings = [make_meeting(account, status="started") for _ in range(3)]
    as_operator.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [m.pk for m in meetings]})
    batch = Batch.objects.get()
    batch.actions.filter(pk=batch.actions.order_by("pk")[0].pk).update(state="running")
    html = as_operator.post(reverse("bulk-cancel", args=[batch.pk]), **HTMX).content.decode()
    assert "2 actions that had not started will not run; 1 already talking to Zoom finishes." in (
        html
    )
    # Polled again, as the page does every second, the panel keeps saying it.
    html = as_operator.get(reverse("bulk", args=[batch.pk]), **HTMX).content.decode()
    assert "1 already talking to Zoom finishes" in html


def test_a_finished_batch_is_headed_with_what_happened_not_cancelled(as_operator, account):
    meetings = [make_meeting(account, status="started") for _ in range(6)]
    as_operator.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [m.pk for m in meetings]})
    batch = Batch.objects.get()
    first, second, third, fourth, fifth, _last = batch.actions.order_by("pk")
    # four had ended, one failed, when the operator cancelled the last one
    Action.objects.filter(pk__in=[first.pk, second.pk, third.pk, fourth.pk]).update(
        state="succeeded"
    )
    Action.objects.filter(pk=fifth.pk).update(state="failed")
    as_operator.post(reverse("bulk-cancel", args=[batch.pk]), **HTMX)

    html = as_operator.get(reverse("bulk", args=[batch.pk])).content.decode()

    heading = re.search(r'<h2 id="progress-title">(.*?)<span', html, re.S).group(1).strip()
    assert heading == "4 ended, 1 failed, 1 cancelled"


def test_past_batches_are_listed_newest_first_with_what_they_did(client, viewer, operator, account):
    meetings = [make_meeting(account, status="started") for _ in range(3)]
    operator_client = Client()
    operator_client.force_login(operator)
    operator_client.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [meetings[0].pk]})
    operator_client.post(
        reverse("bulk-run"), {"kind": "end_meeting", "ids": [m.pk for m in meetings[1:]]}
    )
    older, newer = Batch.objects.order_by("created", "pk")
    older.actions.update(state="succeeded")
    client.force_login(viewer)

    page = client.get(reverse("batches")).content.decode()

    assert page.index(f'href="/bulk/{newer.pk}/"') < page.index(f'href="/bulk/{older.pk}/"')
    assert "End meeting × 1" in page and "1 ended" in page
    assert "Running… 0 of 2 finished" in page
    assert f'href="{reverse("batches")}"' in client.get(reverse("activity")).content.decode()


def test_nothing_left_to_do_is_a_message_not_an_error(as_operator, account):
    waiting = make_meeting(account, status="waiting")
    response = as_operator.post(
        reverse("bulk-run"), {"kind": "end_meeting", "ids": [waiting.pk]}, follow=True
    )
    assert "Nothing to do" in response.content.decode()
    assert Batch.objects.count() == 0


def test_a_batch_that_kept_colliding_is_a_message_and_writes_nothing(
    as_operator, account, monkeypatch
):
    from django.db import IntegrityError

    from meetings import actions

    # given every INSERT of the batch colliding with someone else's request for its meetings
    def colliding(*args, **kwargs):
        raise IntegrityError("could not create the actions (concurrent ones kept colliding)")

    monkeypatch.setattr(actions, "_insert_batch", colliding)
    live = make_meeting(account, status="started")

    response = as_operator.post(
        reverse("bulk-run"), {"kind": "end_meeting", "ids": [live.pk]}, follow=True
    )

    assert response.status_code == 200
    assert "nothing was requested" in response.content.decode()
    assert Batch.objects.count() == 0 and Action.objects.count() == 0


def test_bulk_needs_the_permission_of_its_kind(client, django_user_model, account):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("streams-only", password="x" * 20)
    user.user_permissions.add(
        Permission.objects.get(codename="view_meeting"),
        Permission.objects.get(codename="manage_livestream"),
    )
    client.force_login(user)
    meeting = make_meeting(account, status="started", livestream_status="live")
    listing = client.get(reverse("meetings")).content.decode()
    assert '<option value="stop_livestream">' in listing
    assert '<option value="end_meeting">' not in listing
    assert preview(client, "end_meeting", [meeting]).status_code == 403
    assert preview(client, "stop_livestream", [meeting]).status_code == 200
    response = client.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [meeting.pk]})
    assert response.status_code == 403
    assert Action.objects.count() == 0


def test_a_batch_over_several_connections_that_needs_approval_waits_as_one(as_operator, account):
    from meetings.models import Approval, ApprovalSettings

    ApprovalSettings.objects.create(bulk_enabled=True, bulk_threshold=2, kinds=[])
    other = make_account("Other")
    meetings = [make_meeting(a, status="started") for a in (account, other, other)]
    as_operator.post(reverse("bulk-run"), {"kind": "end_meeting", "ids": [m.pk for m in meetings]})
    batch = Batch.objects.get()
    assert batch.account is None and batch.total == 3
    assert set(batch.actions.values_list("state", flat=True)) == {"awaiting"}
    approval = Approval.objects.get()
    assert approval.batch == batch and approval.size == 3
    # filed under the first connection, its plan naming each meeting's own
    assert approval.account == account
    assert sorted(item["account_id"] for item in approval.plan) == sorted(
        m.account_id for m in meetings
    )
    # its progress says what it waits for, not "0 waiting"
    page = as_operator.get(reverse("bulk", args=[batch.pk])).content.decode()
    assert "· 3 awaiting approval" in page
    assert "waiting their turn" not in page


def test_a_batch_over_two_connections_is_seen_and_cancelled_only_by_who_has_both(
    client, django_user_model, account
):
    from meetings.actions import create_batch
    from meetings.models import ConnectionGrant

    other = make_account("Other")
    meetings = [make_meeting(a, status="started") for a in (account, other)]
    batch, _ = create_batch(account=None, kind="end_meeting", targets=meetings)
    one = django_user_model.objects.create_user("one-connection", password="x" * 20)
    ConnectionGrant.objects.create(user=one, account=account, role="operator")
    both = django_user_model.objects.create_user("two-connections", password="x" * 20)
    for a in (account, other):
        ConnectionGrant.objects.create(user=both, account=a, role="operator")

    client.force_login(one)
    assert client.get(reverse("bulk", args=[batch.pk])).status_code == 404
    assert client.post(reverse("bulk-cancel", args=[batch.pk])).status_code == 404
    assert f"#{batch.pk}" not in client.get(reverse("batches")).content.decode()

    client.force_login(both)
    page = client.get(reverse("bulk", args=[batch.pk])).content.decode()
    assert "Cancel what has not started" in page
    client.post(reverse("bulk-cancel", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.is_cancelled


# --- "Review all N in this list" ------------------------------------------------------------


def review_all(client, kind, back):
    return client.get(reverse("bulk-preview"), {"kind": kind, "matching": "1", "back": back})


def named_ids(page):
    """The ids the review's run form names (what a run would act on)."""
    return [int(i) for i in re.findall(r'<input type="hidden" name="ids" value="(\d+)">', page)]


def test_all_in_the_list_reviews_every_meeting_its_search_and_filters_show_on_every_page(
    as_operator, account
):
    breakouts = [make_meeting(account, status="started", topic=f"Breakout {n}") for n in range(60)]
    make_meeting(account, status="started", topic="Plenary")
    make_meeting(account, status="waiting", topic="Breakout later")
    back = "q=Breakout&status=started"

    listed = as_operator.get(reverse("meetings"), {"q": "Breakout", "status": "started"})
    # the list shows 50 of them, and offers the 60
    assert len(listed.context["page"].rows) == 50
    assert 'name="matching" value="1">Review all 60 in this list…</button>' in (
        listed.content.decode()
    )

    response = review_all(as_operator, "end_meeting", back)
    page = response.content.decode()
    assert response.status_code == 200
    assert "60 will be done" in page
    assert "End 60 meetings" in page
    assert sorted(named_ids(page)) == sorted(m.pk for m in breakouts)
    assert Action.objects.count() == 0  # a review does nothing
    # Cancel goes back to the list as it was
    assert 'href="/meetings/?q=Breakout&amp;status=started"' in page

    as_operator.post(
        reverse("bulk-run"), {"kind": "end_meeting", "ids": named_ids(page), "back": back}
    )
    batch = Batch.objects.get()
    assert sorted(a.target_id for a in batch.actions.all()) == sorted(m.zoom_id for m in breakouts)


def test_all_in_the_list_is_in_the_lists_order_live_first(as_operator, account):
    from datetime import UTC, datetime, timedelta

    start = datetime(2027, 1, 4, 9, tzinfo=UTC)
    waiting = [
        make_meeting(account, status="waiting", start_time=start + timedelta(days=n))
        for n in range(3)
    ]
    live = make_meeting(account, status="started", start_time=start - timedelta(days=9))
    page = review_all(as_operator, "end_meeting", "").content.decode()
    assert named_ids(page) == [live.pk, *[m.pk for m in reversed(waiting)]]
    page = review_all(as_operator, "end_meeting", "sort=oldest").content.decode()
    assert named_ids(page) == [live.pk, *[m.pk for m in waiting]]


def test_a_list_longer_than_the_bulk_limit_is_refused_saying_how_to_narrow_it(
    as_operator, account, monkeypatch
):
    from meetings.views import bulk, meetings_list

    monkeypatch.setattr(bulk, "BULK_MAX", 5)
    monkeypatch.setattr(meetings_list, "BULK_MAX", 5)
    for n in range(6):
        make_meeting(account, status="started", topic=f"Town hall {n}")
    # 6 of them on one page: nothing past this page to offer
    listed = as_operator.get(reverse("meetings"), {"q": "Town hall"}).content.decode()
    assert "Review all" not in listed

    response = review_all(as_operator, "end_meeting", "q=Town+hall")
    assert response.status_code == 302
    assert response["Location"] == "/meetings/?q=Town+hall"
    page = as_operator.get(response["Location"]).content.decode()
    assert "More than 5 meetings are in this list: narrow it" in page
    assert Action.objects.count() == 0
    assert Batch.objects.count() == 0


def test_the_list_says_how_to_act_on_all_when_it_is_longer_than_the_bulk_limit(
    as_operator, account, monkeypatch
):
    from meetings.views import meetings_list

    monkeypatch.setattr(meetings_list, "BULK_MAX", 55)
    for n in range(60):
        make_meeting(account, status="started", topic=f"Town hall {n}")
    listed = as_operator.get(reverse("meetings")).content.decode()
    assert "Review all" not in listed
    assert "To act on the whole list at once, narrow it to 55 or fewer." in listed


def test_all_in_a_list_whose_filters_are_wrong_is_refused(as_operator, account):
    make_meeting(account, status="started")
    response = review_all(as_operator, "end_meeting", "start_from=yesterday")
    assert response.status_code == 302
    page = as_operator.get(response["Location"]).content.decode()
    assert "The list&#x27;s filters are not valid" in page
    assert Action.objects.count() == 0


def test_a_run_takes_only_the_meetings_its_review_named(as_operator, account):
    make_meeting(account, status="started")
    response = as_operator.post(
        reverse("bulk-run"), {"kind": "end_meeting", "matching": "1", "back": ""}, follow=True
    )
    assert "Review the selection before running it." in response.content.decode()
    assert Batch.objects.count() == 0


def test_all_in_the_list_holds_only_the_connections_one_may_see(client, account):
    from tests.test_authz_matrix import granted_user

    other = make_account("Other")
    mine = [make_meeting(account, status="started") for _ in range(2)]
    make_meeting(other, status="started")
    client.force_login(granted_user("operator", account))
    page = review_all(client, "end_meeting", "").content.decode()
    assert sorted(named_ids(page)) == sorted(m.pk for m in mine)


def test_all_in_the_webinars_list_reviews_every_webinar_it_shows(as_operator, account):
    from .dashboard_data import make_webinar

    live = [make_webinar(account, status="started", topic=f"Launch {n}") for n in range(55)]
    make_webinar(account, status="started", topic="Other")
    listed = as_operator.get(reverse("webinars"), {"q": "Launch"}).content.decode()
    assert "Review all 55 in this list…" in listed
    page = review_all(as_operator, "end_webinar", "q=Launch").content.decode()
    assert "55 will be done" in page
    assert sorted(named_ids(page)) == sorted(w.pk for w in live)
