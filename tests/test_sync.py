"""The sync: Zoom's lists (over HTTP, from the sandbox) mirrored in bulk, only what changed."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from meetings import mirror, sync
from meetings.models import (
    LiveStreamStatus,
    Meeting,
    MeetingStatus,
    MirrorLock,
    Webinar,
    ZoomAccount,
)
from meetings.sync import SyncAlreadyRunning, sync_account
from meetings.zoom.client import ZoomClient
from meetings.zoom.errors import ZoomError
from meetings.zoom.sandbox import DEFAULT_ACCOUNT_ID

MIRROR_TABLES = ("meetings_meeting", "meetings_webinar", "meetings_pastmeeting")


@pytest.fixture
def account(db):
    return ZoomAccount.objects.create(
        name="Sandbox", kind="server_to_server", client_id="cid", zoom_account_id=DEFAULT_ACCOUNT_ID
    )


@pytest.fixture
def zoom(zoom_sandbox):
    """The sandbox's world, and its owner (every account has one)."""
    return zoom_sandbox.state


def on_business(account, zoom):
    """The account on a Business plan, in Zoom and in the dashboard: the Dashboard lists what is
    live (the sandbox's default, Pro, lists nothing live: zoom/api#76)."""
    zoom.set_plan("business")
    account.plan = "business"
    account.save(update_fields=["plan"])


@pytest.fixture
def client(zoom_sandbox, zoom_sandbox_session):
    return ZoomClient(zoom_sandbox_session, zoom_sandbox.api_url, timeout=5)


def no_sleep(seconds):
    pass


def mirror_writes(queries):
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and any(table in q["sql"] for table in MIRROR_TABLES)
    ]


def test_a_sync_mirrors_every_meeting_across_several_pages(account, zoom, client, zoom_sandbox):
    # given a Business account's host with 700 meetings (three pages of 300), a few of them
    # live, a live instant meeting (in no list: the Dashboard names it) and a webinar
    on_business(account, zoom)
    host = zoom.add_user(email="big.host@sandbox.example", first_name="Big", last_name="Host")
    ids = [zoom.add_meeting(host["id"], f"Meeting {n}")["id"] for n in range(700)]
    live = [zoom.add_meeting(host["id"], f"Live {n}", status="started")["id"] for n in range(3)]
    instant = zoom.add_meeting(host["id"], "Instant", type=1, status="started")["id"]
    webinar = zoom.add_webinar(host["id"], "Launch")["id"]
    progress = []

    # when
    result = sync_account(account, client, on_progress=progress.append, progress_interval=0)

    # then every meeting is mirrored, with its host's email from the user list
    assert result.complete
    assert Meeting.objects.filter(account=account).count() == 704
    assert result.meetings == 703  # listed; the instant meeting was fetched
    assert (result.fetched, result.live_source) == (1, "dashboard")
    assert result.webinars == 1
    assert result.created == 705
    assert (result.updated, result.deleted) == (0, 0)
    assert result.users == 2  # the owner and the big host
    # users, the Dashboard: 1 page each; owner: scheduled, webinars; host: 3 + 1 pages
    assert result.pages == 1 + 1 + 2 + 4
    meeting = Meeting.objects.get(zoom_id=ids[123])
    assert meeting.topic == "Meeting 123"
    assert meeting.host_email == "big.host@sandbox.example"
    assert meeting.host_id == host["id"]
    assert meeting.status == MeetingStatus.WAITING
    assert meeting.join_url.endswith(str(ids[123]))
    assert meeting.start_time is not None
    assert set(
        Meeting.objects.filter(status=MeetingStatus.STARTED).values_list("zoom_id", flat=True)
    ) == {*live, instant}
    assert Meeting.objects.get(zoom_id=live[0]).uuid == zoom.meetings[live[0]]["uuid"]
    assert Webinar.objects.get(zoom_id=webinar).topic == "Launch"
    # and progress was reported up to the last user
    assert progress[-1]["users_done"] == progress[-1]["users_total"] == 2
    assert progress[-1]["pages"] == result.pages
    assert progress[-1]["meetings"] == 703
    instant_row = Meeting.objects.get(zoom_id=instant)
    assert (instant_row.type, instant_row.topic) == (1, "Instant")
    assert instant_row.host_email == "big.host@sandbox.example"
    assert account.__class__.objects.get(pk=account.pk).last_sync_at is not None
    # and every request to Zoom asked for the largest page and went to a medium-label list
    meeting_lists = [r for r in zoom.requests if r.template == "/users/{userId}/meetings"]
    assert meeting_lists and all(r.query.get("page_size") == "300" for r in meeting_lists)


def test_users_are_listed_across_several_pages(account, zoom, client):
    hosts = [zoom.add_user(email=f"host{n}@sandbox.example") for n in range(7)]
    for host in hosts:
        zoom.add_meeting(host["id"], f"{host['email']}'s meeting")
    client.page_size = 3  # 8 users: three pages of users, the meetings one page each

    result = sync_account(account, client)

    assert result.users == 8
    assert Meeting.objects.count() == 7
    assert set(Meeting.objects.values_list("host_email", flat=True)) == {h["email"] for h in hosts}
    users_pages = [r for r in zoom.requests if r.template == "/users"]
    assert len(users_pages) == 3


def test_a_resync_with_nothing_changed_writes_nothing(account, zoom, client):
    on_business(account, zoom)
    host = zoom.add_user()
    for n in range(40):
        zoom.add_meeting(host["id"], f"Meeting {n}", status="started" if n < 3 else "waiting")
    zoom.add_meeting(host["id"], "Instant", type=1, status="started")
    zoom.add_webinar(host["id"], "Webinar")
    sync_account(account, client)

    with CaptureQueriesContext(connection) as queries:
        result = sync_account(account, client)

    assert mirror_writes(queries.captured_queries) == []
    assert (result.created, result.updated, result.deleted) == (0, 0, 0)
    assert result.meetings == 40  # listed: the instant meeting is in no list
    assert result.verified == 0  # nothing was absent: nothing to ask about


def test_a_change_on_zoom_updates_that_row_in_one_bulk_statement(account, zoom, client):
    on_business(account, zoom)
    host = zoom.add_user()
    meetings = [zoom.add_meeting(host["id"], f"Meeting {n}") for n in range(50)]
    sync_account(account, client)
    meetings[7]["topic"] = "Renamed on Zoom"
    meetings[9]["duration"] = 15
    zoom.start_meeting(meetings[11]["id"])

    with CaptureQueriesContext(connection) as queries:
        result = sync_account(account, client)

    writes = mirror_writes(queries.captured_queries)
    assert len(writes) == 1 and writes[0].lstrip().upper().startswith("UPDATE")
    assert result.updated == 3
    assert Meeting.objects.get(zoom_id=meetings[7]["id"]).topic == "Renamed on Zoom"
    assert Meeting.objects.get(zoom_id=meetings[9]["id"]).duration == 15
    assert Meeting.objects.get(zoom_id=meetings[11]["id"]).status == MeetingStatus.STARTED
    assert Meeting.objects.get(zoom_id=meetings[11]["id"]).uuid == meetings[11]["uuid"]
    assert Meeting.objects.get(zoom_id=meetings[7]["id"]).last_synced_at is not None


def test_a_meeting_no_longer_live_is_marked_ended_once_zoom_says_so(account, zoom, client):
    # given a Business account whose Dashboard stopped naming a meeting the mirror has live
    on_business(account, zoom)
    host = zoom.add_user()
    meeting = zoom.add_meeting(host["id"], "Running", status="started")
    sync_account(account, client)
    zoom.end_meeting(meeting["id"])
    zoom.advance_clock(60)  # long enough ago for Zoom's status to follow an end
    before = zoom.request_seq

    result = sync_account(account, client)

    # then the sync asked Zoom about it (Get a meeting: "waiting") and only then ended it
    row = Meeting.objects.get(zoom_id=meeting["id"])
    assert row.status == MeetingStatus.ENDED
    assert row.livestream_status == LiveStreamStatus.STOPPED
    asked = [r for r in zoom.requests_since(before) if r.template == "/meetings/{meetingId}"]
    assert [r.path for r in asked] == [f"/v2/meetings/{meeting['id']}"]
    assert result.verified == 1
    assert "verified 1 absent meetings" in result.summary()


def test_a_meeting_that_vanished_from_zoom_is_marked_deleted(account, zoom, client):
    host = zoom.add_user()
    kept = zoom.add_meeting(host["id"], "Kept")
    gone = zoom.add_meeting(host["id"], "Deleted on Zoom")
    webinar = zoom.add_webinar(host["id"], "Cancelled webinar")
    sync_account(account, client)
    zoom.delete_meeting(gone["id"])
    zoom.webinars[webinar["id"]]["status"] = "deleted"

    result = sync_account(account, client)

    assert result.deleted == 2
    assert Meeting.objects.get(zoom_id=gone["id"]).status == MeetingStatus.DELETED
    assert Meeting.objects.get(zoom_id=kept["id"]).status == MeetingStatus.WAITING
    assert Webinar.objects.get(zoom_id=webinar["id"]).status == MeetingStatus.DELETED

    # and a recovered meeting comes back
    zoom.recover_meeting(gone["id"])
    sync_account(account, client)
    assert Meeting.objects.get(zoom_id=gone["id"]).status == MeetingStatus.WAITING


def test_the_meetings_of_a_deactivated_user_stay_while_zoom_answers_for_them(account, zoom, client):
    # A deactivated user is in no list of active users, so neither are their meetings; Zoom
    # still answers for them, so they are not called deleted until it no longer does.
    host = zoom.add_user()
    meeting = zoom.add_meeting(host["id"], "Theirs")
    sync_account(account, client)
    zoom.users[host["id"]]["status"] = "inactive"

    kept = sync_account(account, client)
    del zoom.users[host["id"]]  # then deleted from the account, their meetings with them
    gone = sync_account(account, client)

    assert (kept.verified, kept.deleted) == (1, 0)
    assert (gone.verified, gone.deleted) == (1, 1)
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.DELETED


def test_a_user_removed_during_the_sync_has_their_meetings_deleted(
    account, zoom, zoom_sandbox, zoom_sandbox_session
):
    # Zoom answers 404 code 1001 for a user who no longer exists: their meetings are gone too.
    host = zoom.add_user()
    other = zoom.add_user()
    meeting = zoom.add_meeting(host["id"], "Theirs")
    kept = zoom.add_meeting(other["id"], "Kept")
    removed = []

    def remove_host_after_users_are_listed(method, path, status, duration_ms, error):
        if path == "/users" and not removed:
            removed.append(zoom.users.pop(host["id"]))

    session_client = ZoomClient(
        zoom_sandbox_session, zoom_sandbox.api_url, on_response=remove_host_after_users_are_listed
    )
    Meeting.objects.create(account=account, zoom_id=meeting["id"], host_id=host["id"])

    result = sync_account(account, session_client)

    assert result.complete
    assert [s["list"] for s in result.skipped] == ["scheduled meetings", "webinars"]
    assert "does not exist" in result.skipped[0]["reason"]
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.DELETED
    assert Meeting.objects.get(zoom_id=kept["id"]).status == MeetingStatus.WAITING


def test_an_instant_meeting_that_ended_is_not_called_deleted(account, zoom, client):
    # Zoom never lists instant meetings; one that ran and ended simply isn't there any more.
    on_business(account, zoom)
    host = zoom.add_user()
    instant = zoom.add_meeting(host["id"], "Quick call", type=1, status="started")
    sync_account(account, client)
    assert Meeting.objects.get(zoom_id=instant["id"]).status == MeetingStatus.STARTED
    zoom.end_meeting(instant["id"])
    zoom.advance_clock(60)  # long enough ago for Zoom's status to follow an end

    sync_account(account, client)
    sync_account(account, client)

    assert Meeting.objects.get(zoom_id=instant["id"]).status == MeetingStatus.ENDED


def test_an_expired_page_token_restarts_that_listing_and_the_sync_completes(
    account, zoom, zoom_sandbox, zoom_sandbox_session
):
    host = zoom.add_user()
    ids = {zoom.add_meeting(host["id"])["id"] for _ in range(650)}
    expired = []

    def expire_tokens_after_the_first_page(method, path, status, duration_ms, error):
        # The listing took more than 15 minutes: every token handed out so far stops working.
        if path == "/users/{userId}/meetings" and zoom.page_tokens and not expired:
            expired.append(zoom.expire_page_tokens())

    client = ZoomClient(
        zoom_sandbox_session,
        zoom_sandbox.api_url,
        on_response=expire_tokens_after_the_first_page,
    )

    result = sync_account(account, client)

    assert expired == [1]
    assert result.complete
    assert result.restarts == 1
    assert set(Meeting.objects.values_list("zoom_id", flat=True)) == ids
    refused = [r for r in zoom.requests if r.status == 400]
    assert len(refused) == 1 and refused[0].query.get("next_page_token")


def test_an_aborted_pass_deletes_nothing(account, zoom, zoom_sandbox, zoom_sandbox_session):
    first = zoom.add_user(email="a@sandbox.example")
    second = zoom.add_user(email="b@sandbox.example")
    gone = zoom.add_meeting(first["id"], "Deleted on Zoom")
    zoom.add_meeting(second["id"], "Second's")
    sync_account(account, ZoomClient(zoom_sandbox_session, zoom_sandbox.api_url))
    zoom.delete_meeting(gone["id"])
    new = zoom.add_meeting(first["id"], "New on Zoom")

    def zoom_breaks_after_the_first_user(method, path, status, duration_ms, error):
        if path == "/users/{userId}/webinars":
            zoom.set_faults(error_rate=1.0)

    client = ZoomClient(
        zoom_sandbox_session, zoom_sandbox.api_url, on_response=zoom_breaks_after_the_first_user
    )

    with pytest.raises(ZoomError) as failure:
        sync_account(account, client, sleep=no_sleep)

    assert failure.value.status in (500, 503)  # a JSON 500 or a load balancer's 503 page

    # the deleted meeting stays as it was; what was learned before the failure may be kept
    assert Meeting.objects.get(zoom_id=gone["id"]).status == MeetingStatus.WAITING
    assert not MirrorLock.objects.exists()  # the lock was released
    zoom.set_faults()
    result = sync_account(account, ZoomClient(zoom_sandbox_session, zoom_sandbox.api_url))
    assert result.deleted == 1
    assert Meeting.objects.get(zoom_id=new["id"]).topic == "New on Zoom"


def test_a_passing_zoom_failure_is_retried_within_the_sync(account, zoom, zoom_sandbox, client):
    host = zoom.add_user()
    zoom.add_meeting(host["id"], "Survivor")
    failures = []

    def one_failure(method, path, status, duration_ms, error):
        if path == "/users/{userId}/meetings" and not failures:
            failures.append(1)
            zoom.set_faults(error_rate=1.0)
        elif failures and len(failures) == 1 and status and status >= 500:
            failures.append(2)
            zoom.set_faults()

    client.on_response = one_failure
    waits = []

    result = sync_account(account, client, sleep=waits.append)

    assert result.complete
    assert result.restarts == 1
    assert waits == [1]
    assert Meeting.objects.filter(topic="Survivor").exists()


def test_a_newer_webhook_event_wins_over_the_sync(account, zoom, zoom_sandbox, client):
    host = zoom.add_user()
    meeting = zoom.add_meeting(host["id"], "Ending", status="started")
    sync_account(account, client)
    applied = []

    def meeting_ends_while_the_sync_runs(method, path, status, duration_ms, error):
        # Zoom's list already said "live"; then meeting.ended arrives and is applied.
        if path == "/users/{userId}/meetings" and not applied:
            applied.append(
                mirror.record_meeting_status(account, meeting["id"], MeetingStatus.ENDED)
            )

    client.on_response = meeting_ends_while_the_sync_runs

    sync_account(account, client)

    assert applied
    assert Meeting.objects.get(zoom_id=meeting["id"]).status == MeetingStatus.ENDED


def test_a_sync_does_not_touch_live_stream_settings(account, zoom, client):
    host = zoom.add_user()
    meeting = zoom.add_meeting(host["id"], "Streamed")
    sync_account(account, client)
    row = Meeting.objects.get(zoom_id=meeting["id"])
    row.stream_url, row.stream_key, row.page_url = "rtmp://x/app", "sk-secret", "https://x/l"
    row.save()
    meeting["topic"] = "Streamed (renamed)"

    sync_account(account, client)

    row.refresh_from_db()
    assert row.topic == "Streamed (renamed)"
    assert (row.stream_url, row.stream_key) == ("rtmp://x/app", "sk-secret")


def test_each_list_goes_through_the_throttle_as_medium(
    account, zoom, zoom_sandbox, zoom_sandbox_session
):
    host = zoom.add_user()
    zoom.add_meeting(host["id"])
    labels = []
    client = ZoomClient(zoom_sandbox_session, zoom_sandbox.api_url, throttle=labels.append)

    sync_account(account, client)

    api_requests = [r for r in zoom.requests if r.path.startswith("/v2/")]
    assert labels == ["medium"] * len(api_requests)
    # users; two users x (scheduled, webinars): below Business `live` lists nothing (#76)
    assert len(labels) == 1 + 2 * 2


# --- One sync at a time -----------------------------------------------------------------------


def test_a_second_sync_of_the_same_account_reports_already_running(account, zoom, client):
    held = sync.sync_lock(account)
    assert held.acquire()
    before = len(zoom.requests)
    try:
        with pytest.raises(SyncAlreadyRunning, match="already running"):
            sync_account(account, client)
    finally:
        held.release()

    assert len(zoom.requests) == before  # nothing was asked of Zoom
    assert sync_account(account, client).complete  # and once released, it runs


@pytest.mark.django_db(transaction=True)
def test_two_syncs_at_once_run_one(zoom_sandbox, zoom_sandbox_token):
    account = ZoomAccount.objects.create(
        name="Sandbox", kind="server_to_server", client_id="cid", zoom_account_id=DEFAULT_ACCOUNT_ID
    )
    zoom = zoom_sandbox.state
    host = zoom.add_user()
    zoom.add_meeting(host["id"])
    zoom.set_faults(latency_ms=150)  # the first sync takes a while: 7 requests
    outcomes = []

    def run():
        try:
            # Its own session (connection pool), as another worker would have; the same token,
            # since fetching a new S2S token revokes the previous one.
            session = _session(zoom_sandbox_token)
            outcomes.append(sync_account(account, ZoomClient(session, zoom_sandbox.api_url)))
        except SyncAlreadyRunning as e:
            outcomes.append(e)
        finally:
            connection.close()

    first = threading.Thread(target=run)
    first.start()
    deadline = time.monotonic() + 5
    while not sync.is_sync_running(account) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sync.is_sync_running(account)
    run()  # the second, while the first holds the lock
    first.join(timeout=30)

    assert len(outcomes) == 2
    assert isinstance(outcomes[0], SyncAlreadyRunning)
    assert outcomes[1].complete
    assert not sync.is_sync_running(account)


def test_a_lock_whose_holder_died_lapses(account):
    dead = sync._DatabaseLock(f"sync:account:{account.pk}")
    assert dead.acquire()
    assert not sync._DatabaseLock(f"sync:account:{account.pk}").acquire()
    MirrorLock.objects.update(expires_at=now() - timedelta(seconds=1))

    taker = sync._DatabaseLock(f"sync:account:{account.pk}")
    assert taker.acquire()

    # the dead holder, should it wake up, finds it lost the lock
    with pytest.raises(sync.SyncLockLost):
        dead.renew(force=True)
    dead.release()  # releases nothing of the new holder's
    assert MirrorLock.objects.get().holder == taker.holder


def test_the_result_reads_as_a_sentence():
    result = sync.SyncResult(users=3, pages=5, meetings=700, webinars=2, created=4, updated=1)

    assert result.summary() == (
        "Synced 3 users: 700 meetings and 2 webinars on Zoom; 4 new, 1 changed, 0 deleted (5 pages)"
    )
    assert result.as_dict()["meetings"] == 700


def _session(token):
    import requests

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    return session


# --- Through the action pipeline: the audit record, the schedule, the shell, a real worker -------


def test_a_sync_action_runs_the_sync_and_keeps_its_outcome(
    sandbox_account, sandbox_host, zoom_sandbox
):
    from meetings.actions import execute, request_action
    from meetings.models import ActionState

    for n in range(5):
        zoom_sandbox.state.add_meeting(sandbox_host["id"], f"Meeting {n}")
    action, created = request_action(
        account=sandbox_account, kind="sync", source="dashboard", enqueue=False
    )

    assert created
    assert execute(action.pk) == ActionState.SUCCEEDED

    action.refresh_from_db()
    assert action.result_summary.startswith("Synced 2 users: 5 meetings and 0 webinars on Zoom")
    assert action.result["created"] == 5
    assert action.result["complete"] is True
    assert Meeting.objects.filter(account=sandbox_account).count() == 5


@pytest.mark.django_db(transaction=True)
def test_the_sync_keeps_to_the_medium_rate_limit_through_the_shared_limiter(
    zoom_sandbox, settings, request
):
    from meetings.actions import execute, request_action
    from meetings.models import ActionState

    sandbox_account = request.getfixturevalue("sandbox_account")
    zoom = zoom_sandbox.state
    for n in range(5):
        zoom.add_meeting(zoom.add_user()["id"], f"Meeting {n}")
    # Zoom allows 8 Medium requests a second on this account; the limiter is told the same.
    zoom.set_rate_limit("medium", 8)
    settings.ZOOM_RATE_LIMIT_MEDIUM = 8
    # 80 %: room for a loaded CI machine's jitter (the default's figure is `make bench`'s job)
    settings.ZOOM_RATE_LIMIT_HEADROOM = 0.8
    action, _ = request_action(account=sandbox_account, kind="sync", source="cli", enqueue=False)
    started = time.monotonic()

    assert execute(action.pk) == ActionState.SUCCEEDED

    elapsed = time.monotonic() - started
    lists = [r for r in zoom.requests if r.path.startswith("/v2/users")]
    assert len(lists) == 1 + 6 * 2  # users; 6 users x (scheduled, webinars) on Pro
    assert zoom.counters["status_429"] == 0  # Zoom never had to say no
    # 19 requests at 8/s less headroom: the limiter spaced them out (the first ones may burst)
    assert elapsed >= (len(lists) - settings.ZOOM_RATE_LIMIT_BURST - 1) / 8


def test_the_schedule_asks_for_one_sync_per_connected_account(
    sandbox_account, django_capture_on_commit_callbacks
):
    from meetings.models import Action
    from meetings.tasks.mirror import sync_all_accounts

    other = ZoomAccount.objects.create(name="Other", kind="server_to_server", client_id="c2")
    ZoomAccount.objects.create(
        name="Broken",
        kind="server_to_server",
        client_id="c3",
        status=ZoomAccount.Status.NEEDS_RECONNECT,
    )

    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert sync_all_accounts() == 2
        # the next beat, while those are still queued, adds nothing
        assert sync_all_accounts() == 0

    actions = Action.objects.filter(kind="sync")
    assert {a.account for a in actions} == {sandbox_account, other}
    assert {a.source for a in actions} == {"schedule"}
    assert {a.target_type for a in actions} == {"account"}
    assert len(sent) == 2  # one task message each, after commit


def test_the_periodic_sync_is_in_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sync-all-accounts"]

    assert entry["task"] == "meetings.tasks.mirror.sync_all_accounts"
    assert entry["schedule"] == settings.SYNC_INTERVAL_SECONDS


def test_zoom_sync_runs_the_same_sync_from_a_shell_and_audits_it(
    sandbox_account, sandbox_host, zoom_sandbox, admin_user
):
    from io import StringIO

    from django.core.management import call_command

    from meetings.management.commands.zoomctl import system_user
    from meetings.models import Action

    zoom_sandbox.state.add_meeting(sandbox_host["id"], "From the shell")
    out = StringIO()

    call_command("zoom_sync", "--account", "Sandbox", "--user", admin_user.username, stdout=out)

    assert "Sandbox: Synced 2 users: 1 meetings" in out.getvalue()
    action = Action.objects.get(kind="sync")
    assert (action.source, action.state, action.requested_by) == ("cli", "succeeded", admin_user)
    # Who ran it on the server is on record beside whom it is recorded as (as zoomctl's).
    assert action.os_user == system_user() != ""
    assert Meeting.objects.get().topic == "From the shell"


def test_zoom_sync_names_an_unknown_account_and_fails(sandbox_account):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=r"No Zoom account is named 'Nope'.*Sandbox"):
        call_command("zoom_sync", "--account", "Nope")


def test_zoom_sync_fails_when_zoom_refuses(sandbox_account, zoom_sandbox):
    from io import StringIO

    from django.core.management import CommandError, call_command

    zoom_sandbox.state.revoke_tokens(client_id=sandbox_account.client_id)
    zoom_sandbox.state.remove_app(sandbox_account.client_id)  # the app was deleted on Zoom
    err = StringIO()

    with pytest.raises(CommandError, match="1 of 1 syncs did not succeed"):
        call_command("zoom_sync", stderr=err)

    assert "Sandbox: failed:" in err.getvalue()


@pytest.mark.worker
def test_a_scheduled_sync_runs_on_a_real_worker(celery_worker_process, zoom_sandbox, request):
    from meetings.models import Action
    from meetings.tasks.mirror import sync_all_accounts

    sandbox_account = request.getfixturevalue("sandbox_account")
    host = zoom_sandbox.state.add_user()
    ids = {zoom_sandbox.state.add_meeting(host["id"])["id"] for _ in range(30)}

    sync_all_accounts.delay()  # what beat sends every SYNC_INTERVAL_SECONDS

    deadline = time.monotonic() + 60
    action = None
    while time.monotonic() < deadline:
        action = Action.objects.filter(kind="sync", account=sandbox_account).first()
        if action is not None and action.is_terminal:
            break
        time.sleep(0.2)
    assert action is not None and action.state == "succeeded", action and action.result_summary
    assert action.source == "schedule"
    assert set(Meeting.objects.values_list("zoom_id", flat=True)) == ids
