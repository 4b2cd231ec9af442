"""The sync against a real account's limits (issue 11): webinar licences remembered, scheduled
syncs that fit a Free account's daily caps, and a Daily-limit 429 that pauses its label."""

import html
import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import F
from django.urls import reverse
from django.utils.timezone import now

from meetings import budget
from meetings.actions import request_action
from meetings.models import (
    Action,
    ActionKind,
    ActionSource,
    MeetingStatus,
    WebhookEvent,
    Webinar,
    ZoomAccount,
    ZoomUser,
)
from meetings.tasks.mirror import sync_all_accounts
from meetings.zoom.sandbox import DEFAULT_ACCOUNT_ID
from meetings.zoom.sandbox.seed import seed_world
from tests.waiting import wait_until


def webinar_requests(zoom, user, since):
    return [
        r for r in zoom.requests_since(since) if r.path.endswith(f"/users/{user['id']}/webinars")
    ]


def zoom_sync():
    call_command("zoom_sync", "--account", "Sandbox", stdout=StringIO())
    return Action.objects.filter(kind=ActionKind.SYNC).order_by("-pk").first()


# --- Webinar licences ------------------------------------------------------------------------


def test_a_user_without_a_webinar_licence_is_asked_once_a_day_and_counted_as_information(
    sandbox_account, zoom_sandbox
):
    zoom = zoom_sandbox.state
    member = zoom.add_user(email="member@sandbox.example", webinar_licence=False)
    # a webinar the mirror had from when they were licensed stays as it was
    kept = Webinar.objects.create(
        account=sandbox_account, zoom_id=81234567890, host_id=member["id"], topic="Old"
    )
    since = zoom.request_seq

    first = zoom_sync()
    second = zoom_sync()
    third = zoom_sync()

    assert len(webinar_requests(zoom, member, since)) == 1  # not on every sync
    for action in (first, second, third):
        assert action.state == "succeeded"
        assert action.result["without_webinar_licence"] == 1
        assert action.result["skipped"] == []  # not a refused listing
        assert action.result_summary.endswith("; 1 user without a webinar licence")
    licence = ZoomUser.objects.get(account=sandbox_account, zoom_user_id=member["id"])
    assert licence.webinar_licence is False
    assert licence.email == "member@sandbox.example"
    kept.refresh_from_db()
    assert kept.status != MeetingStatus.DELETED

    # a day later Zoom is asked again; meanwhile an admin assigned a licence
    ZoomUser.objects.filter(pk=licence.pk).update(
        webinar_licence_checked_at=F("webinar_licence_checked_at") - timedelta(days=1)
    )
    zoom.users[member["id"]]["webinar_licence"] = True
    webinar = zoom.add_webinar(member["id"], "Now licensed")
    since = zoom.request_seq

    fourth = zoom_sync()

    assert len(webinar_requests(zoom, member, since)) == 1
    assert fourth.result["without_webinar_licence"] == 0
    assert "webinar licence" not in fourth.result_summary
    licence.refresh_from_db()
    assert licence.webinar_licence is True
    assert Webinar.objects.get(zoom_id=webinar["id"]).topic == "Now licensed"


def test_a_licensed_users_webinars_are_listed_on_every_sync(sandbox_account, zoom_sandbox):
    zoom = zoom_sandbox.state
    host = zoom.add_user(email="licensed@sandbox.example")
    since = zoom.request_seq

    zoom_sync()
    zoom_sync()

    assert len(webinar_requests(zoom, host, since)) == 2
    assert ZoomUser.objects.get(zoom_user_id=host["id"]).webinar_licence is True


# --- The sync interval -----------------------------------------------------------------------


def test_a_free_accounts_sync_interval_follows_its_size_and_its_medium_cap(db, settings):
    settings.SYNC_INTERVAL_SECONDS = 300
    settings.SYNC_DAILY_BUDGET_SHARE = 0.5
    settings.ZOOM_DAILY_LIMIT_MEDIUM = 2000
    small = ZoomAccount.objects.create(name="Small", kind="server_to_server", plan="free")
    big = ZoomAccount.objects.create(name="Big", kind="server_to_server", plan="free")
    paid = ZoomAccount.objects.create(name="Paid", kind="server_to_server", plan="pro")
    ZoomUser.objects.bulk_create(
        [ZoomUser(account=big, zoom_user_id=f"u{n}") for n in range(100)]
        + [ZoomUser(account=small, zoom_user_id="u1"), ZoomUser(account=paid, zoom_user_id="u1")]
    )

    plans = {a.name: budget.sync_plan(a) for a in (small, big, paid)}

    # 100 users: a page of users and three listings each, 301 Medium requests a sync; half
    # of 2,000 a day allows 3.3 of them: one every 7 h 14 min
    assert plans["Big"]["per_sync"]["medium"] == 301
    assert plans["Big"]["interval"] == 26007
    assert plans["Big"]["limited_by"] == "medium"
    assert plans["Big"]["text"] == (
        "Scheduled syncs run every 7 h 13 min: this Free account's Medium limit is 2,000 "
        "requests a day, a sync takes about 301, and scheduled syncs may use 50% of the limit."
    )
    # one user: 4 requests a sync, 250 syncs a day would fit; never more often than the base
    assert plans["Small"]["interval"] == 346
    # no daily caps on a paid plan
    assert (plans["Paid"]["interval"], plans["Paid"]["limited_by"]) == (300, None)


def test_a_sync_interval_uses_what_the_last_sync_measured(db, settings):
    settings.SYNC_INTERVAL_SECONDS = 300
    account = ZoomAccount.objects.create(name="Free", kind="server_to_server", plan="free")
    Action.objects.create(
        account=account,
        kind=ActionKind.SYNC,
        source=ActionSource.SCHEDULE,
        state="succeeded",
        finished_at=now(),
        result={"users": 2, "requests": {"medium": 50, "light": 3000}},
    )

    plan = budget.sync_plan(account)

    # Light: 86,400 x 3,000 / (0.5 x 6,000) = 86,400 s, longer than Medium's 4,320 s
    assert plan["per_sync"] == {"light": 3000, "medium": 50, "heavy": 0}
    assert (plan["interval"], plan["limited_by"]) == (86400, "light")


def test_while_webhooks_flow_full_syncs_run_less_often(db, settings):
    settings.SYNC_INTERVAL_SECONDS = 300
    settings.SYNC_INTERVAL_WITH_WEBHOOKS_SECONDS = 3600
    settings.SYNC_WEBHOOKS_FLOWING_SECONDS = 3600
    account = ZoomAccount.objects.create(
        name="Pro", kind="server_to_server", plan="pro", zoom_account_id="acct-1"
    )
    assert budget.sync_plan(account)["interval"] == 300

    WebhookEvent.objects.create(
        event="meeting.started", zoom_account_id="acct-1", dedupe_key="k1", received_at=now()
    )
    flowing = budget.sync_plan(account)

    assert (flowing["interval"], flowing["webhooks"]) == (3600, True)
    assert "Zoom's events arrive" in flowing["text"]
    # events that stopped two hours ago do not count
    WebhookEvent.objects.update(received_at=now() - timedelta(hours=2))
    assert budget.sync_plan(account)["interval"] == 300


def test_a_scheduled_sync_is_not_asked_for_before_its_interval_has_passed(
    sandbox_account, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_INTERVAL_SECONDS = 300
    Action.objects.create(
        account=sandbox_account, kind=ActionKind.SYNC, source=ActionSource.SCHEDULE
    )
    Action.objects.update(state="succeeded", requested_at=now() - timedelta(seconds=200))

    with django_capture_on_commit_callbacks(execute=False):
        assert sync_all_accounts() == 0
        Action.objects.update(requested_at=now() - timedelta(seconds=301))
        assert sync_all_accounts() == 1


# --- Over a simulated day, with a real worker ---------------------------------------------------

DAY_CAPS = {"medium": 120, "light": 300}


@pytest.mark.worker
@pytest.mark.worker_env(
    SYNC_INTERVAL_SECONDS="300",
    ZOOM_DAILY_LIMIT_MEDIUM=str(DAY_CAPS["medium"]),
    ZOOM_DAILY_LIMIT_LIGHT=str(DAY_CAPS["light"]),
    # Free's 2 Medium requests a second would make the day last minutes; the daily caps are
    # what this test is about.
    ZOOM_RATE_LIMIT_MEDIUM="40",
    ZOOM_RATE_LIMIT_LIGHT="40",
)
@pytest.mark.django_db(transaction=True)
def test_over_a_simulated_day_a_free_accounts_scheduled_syncs_stay_inside_its_daily_caps(
    celery_worker_process, zoom_sandbox, request, settings
):
    settings.ZOOM_DAILY_LIMIT_MEDIUM = DAY_CAPS["medium"]
    settings.ZOOM_DAILY_LIMIT_LIGHT = DAY_CAPS["light"]
    account = request.getfixturevalue("sandbox_account")
    ZoomAccount.objects.filter(pk=account.pk).update(plan="free")
    zoom = zoom_sandbox.state
    zoom.set_plan("free")
    for label, cap in DAY_CAPS.items():
        zoom.set_daily_limit(label, cap)
        zoom.set_rate_limit(label, 40)
    seed_world(zoom, seed=11, users=8, meetings=40, webinars=6)
    # Zoom's day starts now: its clock moves to the next 00:00 UTC
    zoom.advance_clock(86400 - zoom.now() % 86400 + 1)
    day_start = zoom.now()
    tick = settings.SYNC_INTERVAL_SECONDS

    outcomes = []
    for _ in range(86400 // tick):
        if sync_all_accounts():  # what beat sends every tick
            action = wait_until(
                lambda: (
                    Action.objects.filter(kind="sync", state__in=["succeeded", "failed"])
                    .exclude(pk__in=[a.pk for a in outcomes])
                    .first()
                ),
                60,
                "the scheduled sync",
            )
            outcomes.append(action)
        # a tick passes, for Zoom and for the dashboard's records alike
        zoom.advance_clock(tick)
        Action.objects.update(
            requested_at=F("requested_at") - timedelta(seconds=tick),
            finished_at=F("finished_at") - timedelta(seconds=tick),
        )
        ZoomUser.objects.exclude(webinar_licence_checked_at=None).update(
            webinar_licence_checked_at=F("webinar_licence_checked_at") - timedelta(seconds=tick)
        )

    medium = zoom.daily_count(DEFAULT_ACCOUNT_ID, "medium", at=day_start)
    light = zoom.daily_count(DEFAULT_ACCOUNT_ID, "light", at=day_start)
    assert [a.state for a in outcomes] == ["succeeded"] * len(outcomes), [
        a.result_summary for a in outcomes
    ]
    assert zoom.counters["status_429"] == 0
    # 8 users: 17 Medium requests a sync (the users, then each one's scheduled meetings and
    # webinars; a Free account's type=live list is never asked), 15 once the two unlicensed users
    # are remembered; half of 120 a day: a sync every 6.8 h, four in the day
    assert len(outcomes) == 4
    assert outcomes[0].result["requests"]["medium"] == 17
    assert medium == sum(a.result["requests"]["medium"] for a in outcomes) == 62
    assert medium <= DAY_CAPS["medium"]
    assert light <= DAY_CAPS["light"]


# --- A daily limit hit ----------------------------------------------------------------------


def away_from_midnight(zoom):
    """Zoom's day ends at 00:00 UTC, and a cap that frees up within
    ACTION_MAX_RETRY_AFTER_SECONDS is waited for, not failed: at 23:55 UTC a test below waited
    for the new day instead of seeing the cap. They set that wait to 5 s, and start at least
    30 s from Zoom's midnight (waiting for it to pass when closer), whenever they run. Zoom's
    clock is not moved instead: a Zoom minutes ahead of the database is another test's."""
    to_midnight = 86400 - zoom.now() % 86400
    if to_midnight < 30:
        time.sleep(to_midnight + 1)


@pytest.mark.worker
@pytest.mark.worker_env(ZOOM_RATE_LIMIT_MEDIUM="40", ACTION_MAX_RETRY_AFTER_SECONDS="5")
@pytest.mark.django_db(transaction=True)
def test_a_daily_limit_pauses_medium_requests_and_the_connection_page_says_so(
    celery_worker_process, zoom_sandbox, request, client, admin_user
):
    account = request.getfixturevalue("sandbox_account")
    ZoomAccount.objects.filter(pk=account.pk).update(plan="free")
    zoom = zoom_sandbox.state
    zoom.set_plan("free")
    zoom.set_daily_limit("medium", 4)
    zoom.set_rate_limit("medium", 40)
    for n in range(3):
        zoom.add_user(email=f"user{n}@sandbox.example")

    def sync_now():
        action, _ = request_action(
            account=account, kind=ActionKind.SYNC, source=ActionSource.DASHBOARD, user=admin_user
        )
        return wait_until(
            lambda: Action.objects.filter(pk=action.pk, state__in=["succeeded", "failed"]).first(),
            60,
            "the sync",
        )

    away_from_midnight(zoom)
    first = sync_now()

    assert first.state == "failed"
    assert "daily" in first.result_summary
    assert zoom.counters["status_429"] == 1
    # paused until Zoom's Retry-After, the next 00:00 UTC, in the database every process reads
    paused = budget.paused_for(account, "medium")
    assert abs(paused - (86400 - zoom.now() % 86400)) < 5
    assert budget.paused_for(account, "light") == 0
    assert sync_all_accounts() == 0  # no scheduled sync while paused

    # Sync now in the worker: refused without asking Zoom, in words
    asked = zoom.counters["requests"]
    second = sync_now()
    assert second.state == "failed"
    assert zoom.counters["requests"] == asked
    assert second.result_summary.startswith(
        "Zoom's daily limit for Medium requests is used up; they can be sent again at 00:00 UTC"
    )

    client.force_login(admin_user)
    page = client.get(reverse("connection", args=[account.pk])).content.decode()
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert re.search(
        r"Zoom's daily limit for Medium requests is used up; syncing resumes at 00:00 UTC "
        r"\(in (\d+ h )?\d+ min\)",
        text,
    ), text[text.find("Syncing") :][:400]


def test_the_pause_lasts_until_zooms_retry_after_and_no_longer(db, settings):
    account = ZoomAccount.objects.create(name="Free", kind="server_to_server", plan="free")

    budget.pause_label(account, "medium", 2)
    budget.pause_label(account, "medium", 1)  # a shorter one does not shorten it

    assert 1 < budget.paused_for(account, "medium") <= 2
    assert budget.pauses(account).keys() == {"medium"}
    time.sleep(2.1)
    assert budget.paused_for(account, "medium") == 0
    assert budget.pauses(account) == {}


def test_a_scheduled_sync_waits_while_a_label_it_needs_is_paused(
    sandbox_account, django_capture_on_commit_callbacks
):
    ZoomAccount.objects.filter(pk=sandbox_account.pk).update(plan="free")
    sandbox_account.refresh_from_db()

    budget.pause_label(sandbox_account, "heavy", 3600)  # a label the sync does not use
    with django_capture_on_commit_callbacks(execute=False):
        assert sync_all_accounts() == 1
    Action.objects.update(state="succeeded", requested_at=now() - timedelta(days=2))

    budget.pause_label(sandbox_account, "medium", 3600)
    with django_capture_on_commit_callbacks(execute=False):
        assert sync_all_accounts() == 0


def test_a_daily_limit_429_without_zooms_headers_still_pauses_only_its_label(db, settings):
    from meetings.ratelimit import throttle_for
    from meetings.zoom.errors import ZoomRateLimited

    account = ZoomAccount.objects.create(name="Free", kind="server_to_server", plan="free")
    throttle = throttle_for(account, sleep=lambda s: None)
    throttle("medium")  # the request Zoom refused

    # headers missing: no category, no type, no Retry-After; only Zoom's words
    throttle.after_429(
        ZoomRateLimited("You have reached the maximum daily rate limit for this API.", status=429)
    )

    paused = budget.paused_for(account, "medium")
    assert 0 < paused <= 86400  # until 00:00 UTC, Zoom's day
    assert abs(paused - (86400 - time.time() % 86400)) < 5
    assert budget.paused_for(account, "light") == 0
    assert throttle.backoff_remaining() == 0  # the other labels go on
    with pytest.raises(budget.DailyLimitPaused, match="Medium requests is used up"):
        throttle("medium")
    assert throttle("light") >= 0


def test_the_connection_page_says_how_often_syncs_run_and_why(db, client, admin_user, settings):
    settings.SYNC_INTERVAL_SECONDS = 300
    account = ZoomAccount.objects.create(name="Free", kind="server_to_server", plan="free")
    ZoomUser.objects.bulk_create(
        [ZoomUser(account=account, zoom_user_id=f"u{n}") for n in range(100)]
    )
    client.force_login(admin_user)

    page = client.get(reverse("connection", args=[account.pk])).content.decode()

    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert (
        "Syncing Scheduled syncs run every 7 h 13 min: this Free account's Medium limit is "
        "2,000 requests a day, a sync takes about 301, and scheduled syncs may use 50% of the "
        "limit." in text
    )
    assert "paused" not in text


def test_an_end_past_the_light_daily_cap_pauses_light_and_the_next_end_is_not_sent(
    sandbox_account, zoom_sandbox, sandbox_host, settings
):
    from meetings.actions import execute
    from meetings.models import Meeting

    settings.ACTION_MAX_RETRY_AFTER_SECONDS = 5  # see away_from_midnight

    ZoomAccount.objects.filter(pk=sandbox_account.pk).update(plan="free")
    zoom = zoom_sandbox.state
    zoom.set_plan("free")
    zoom.set_daily_limit("light", 0)  # the day's Light requests are already spent
    away_from_midnight(zoom)
    ended = []
    for topic in ("First", "Second"):
        meeting = zoom.add_meeting(sandbox_host["id"], topic, status="started")
        Meeting.objects.create(
            account=sandbox_account,
            zoom_id=meeting["id"],
            host_id=sandbox_host["id"],
            status="started",
        )
        action, _ = request_action(
            account=sandbox_account,
            kind=ActionKind.END_MEETING,
            source=ActionSource.COMMAND_LINE,
            target_type="meeting",
            target_id=meeting["id"],
            enqueue=False,
        )
        since = zoom.request_seq
        execute(action.pk, inline=True)
        action.refresh_from_db()
        ended.append((action, [r for r in zoom.requests_since(since) if r.path.startswith("/v2")]))

    (first, first_sent), (second, second_sent) = ended
    assert first.state == "failed" and [r.status for r in first_sent] == [429]
    assert budget.paused_for(sandbox_account, "light") > 0
    assert budget.paused_for(sandbox_account, "medium") == 0
    assert second.state == "failed" and second_sent == []  # refused here, not at Zoom
    assert second.result_summary.startswith(
        "Zoom's daily limit for Light requests is used up; they can be sent again at 00:00 UTC"
    )
    assert zoom.meetings[second.target_id]["status"] == "started"
