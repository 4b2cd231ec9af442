"""Two-person approval (issue 15): an end of a webinar, a recovery, or a bulk batch of more than
20 waits as "Awaiting approval" until another operator with the permission approves it; the
requester never decides their own request; nobody deciding within APPROVAL_EXPIRY_MINUTES, by
the database's clock, cancels it. Unit tests here; a real worker below; Chromium in
tests/browser/test_approvals.py."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone

import zoomadmin.settings as shipped
from meetings import approvals
from meetings.actions import create_batch, dry_run, request_action, sweep
from meetings.models import (
    AccessEvent,
    Action,
    ActionState,
    Approval,
    ApprovalSettings,
    ApprovalState,
    Meeting,
    Webinar,
)
from meetings.models.actions import TERMINAL_STATES

from .conftest import _user
from .dashboard_data import make_account, make_meeting, make_webinar
from .waiting import wait_until


@pytest.fixture(autouse=True)
def shipped_defaults(settings):
    """The defaults an installation starts with (the other tests turn them off)."""
    settings.APPROVAL_DEFAULTS = shipped.APPROVAL_DEFAULTS


@pytest.fixture
def second_operator(django_user_model, password):
    return _user(django_user_model, "olga-operator", password, groups=["Zoom operators"])


@pytest.fixture
def notified(monkeypatch):
    """What meetings.notifications.notify was asked to raise (its delivery is issue 16's)."""
    raised = []
    monkeypatch.setattr(
        "meetings.notifications.notify", lambda kind, **kw: raised.append((kind, kw))
    )
    return raised


def end_webinar(account, webinar, user, source="dashboard"):
    return request_action(
        account=account,
        kind="end_webinar",
        source=source,
        target_type="webinar",
        target_id=webinar.zoom_id,
        user=user,
    )


# --- what waits ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ending_a_webinar_waits_for_approval_and_sends_nothing(
    operator, notified, django_capture_on_commit_callbacks
):
    account = make_account()
    webinar = make_webinar(account, status="started", topic="Investor day")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        action, created = end_webinar(account, webinar, operator)
    action.refresh_from_db()
    assert created and action.state == ActionState.AWAITING
    assert action.get_state_display() == "Awaiting approval"
    # No task message: never marked sent, and nothing but the announcement ran on commit.
    assert action.celery_task_id == "" and action.lease_expires_at is None
    assert len(callbacks) == 1
    approval = action.approval
    assert approval.state == ApprovalState.WAITING and approval.requested_by == operator
    assert approval.plan[0]["topic"] == "Investor day"
    assert approval.plan[0]["target_id"] == webinar.zoom_id
    assert approval.plan[0]["status"] == "started"
    assert approval.plan[0]["host_email"] == webinar.host_email
    ((kind, raised),) = notified
    assert kind == "approval_waiting"
    assert raised["url"] == f"/approvals/{approval.pk}/" and raised["action"] == action
    assert "Investor day" in raised["title"]


@pytest.mark.django_db
def test_an_end_of_a_meeting_does_not_wait_and_neither_do_automatic_steps(operator):
    account = make_account()
    meeting = make_meeting(account, status="started")
    action, _ = request_action(
        account=account,
        kind="end_meeting",
        source="dashboard",
        target_id=meeting.zoom_id,
        user=operator,
    )
    assert action.state == ActionState.QUEUED
    webinar = make_webinar(account, status="started")
    action, _ = end_webinar(account, webinar, None, source="schedule")
    assert action.state == ActionState.QUEUED
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_admins_choose_what_waits(operator):
    account = make_account()
    ApprovalSettings.objects.create(kinds=["end_meeting"], bulk_enabled=False)
    meeting = make_meeting(account, status="started")
    webinar = make_webinar(account, status="started")
    ended, _ = request_action(
        account=account,
        kind="end_meeting",
        source="dashboard",
        target_id=meeting.zoom_id,
        user=operator,
    )
    assert ended.state == ActionState.AWAITING
    assert end_webinar(account, webinar, operator)[0].state == ActionState.QUEUED


@pytest.mark.django_db
def test_a_second_request_for_an_awaiting_end_is_the_same_request(operator, second_operator):
    account = make_account()
    webinar = make_webinar(account, status="started")
    first, _ = end_webinar(account, webinar, operator)
    again, created = end_webinar(account, webinar, second_operator)
    assert again.pk == first.pk and not created
    assert Approval.objects.count() == 1
    (item,) = dry_run("end_webinar", [webinar])
    assert not item.do
    assert item.reason == f"already requested (action #{first.pk}, awaiting approval)"


@pytest.mark.django_db
def test_a_waiting_action_is_neither_claimed_nor_swept(operator):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    assert Action.claim(action.pk, task_id="a-message") is None
    sweep()
    action.refresh_from_db()
    assert action.state == ActionState.AWAITING and action.attempts_count == 0
    assert not action.is_active and not action.is_terminal


def started_meetings(account, n):
    return [make_meeting(account, status="started", topic=f"Room {i}") for i in range(n)]


@pytest.mark.django_db
def test_a_batch_of_21_waits_as_a_whole(operator, django_capture_on_commit_callbacks):
    account = make_account()
    meetings = started_meetings(account, 21)
    with django_capture_on_commit_callbacks(execute=True):
        batch, _ = create_batch(
            account=account, kind="end_meeting", targets=meetings, user=operator
        )
    assert batch.total == 21
    assert set(batch.actions.values_list("state", flat=True)) == {ActionState.AWAITING}
    assert not batch.actions.exclude(celery_task_id="").exists()
    approval = batch.approval
    assert approval.size == 21 and len(approval.plan) == 21
    assert approval.title == "End meeting: 21 at once"
    progress = batch.progress()
    assert progress["awaiting"] == 21 and not progress["finished"]


@pytest.mark.django_db
def test_a_batch_of_20_does_not_wait(operator, django_capture_on_commit_callbacks):
    account = make_account()
    with django_capture_on_commit_callbacks(execute=True):
        batch, _ = create_batch(
            account=account,
            kind="end_meeting",
            targets=started_meetings(account, 20),
            user=operator,
        )
    assert set(batch.actions.values_list("state", flat=True)) == {ActionState.QUEUED}
    assert not Approval.objects.exists()


# --- who decides ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_requester_cannot_approve_or_reject_their_own_request(operator):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    for decide in (approvals.approve, approvals.reject):
        with pytest.raises(approvals.ApprovalRefused, match="You asked for this yourself"):
            decide(action.approval, user=operator)
    action.refresh_from_db()
    assert action.state == ActionState.AWAITING
    assert Approval.objects.get().state == ApprovalState.WAITING
    assert not AccessEvent.objects.exists()


@pytest.mark.django_db
def test_a_batch_over_two_connections_is_decided_by_someone_with_the_right_on_both(
    operator, viewer, django_user_model, django_capture_on_commit_callbacks
):
    from meetings.models import ConnectionGrant

    sales, support = make_account("Sales"), make_account("Support")
    targets = started_meetings(sales, 11) + started_meetings(support, 11)
    with django_capture_on_commit_callbacks(execute=True):
        batch, _ = create_batch(account=None, kind="end_meeting", targets=targets, user=operator)
    approval = batch.approval
    assert approvals.accounts_of(approval) == sorted([sales.pk, support.pk])
    # An operator of Sales only (a viewer elsewhere) may not release Support's ends with it.
    ConnectionGrant.objects.create(user=viewer, account=sales, role="operator")
    assert approvals.waiting_for(viewer) == []
    with pytest.raises(approvals.ApprovalRefused, match="not allowed to approve"):
        approvals.approve(approval, user=viewer)
    assert set(batch.actions.values_list("state", flat=True)) == {ActionState.AWAITING}
    # Someone who may end meetings on both connections may.
    other = django_user_model.objects.create_user("olga-operator", password="x")
    other.groups.add(*operator.groups.all())
    assert approvals.waiting_for(other) == [approval]
    with django_capture_on_commit_callbacks(execute=False):
        approvals.approve(approval, user=other)
    assert set(batch.actions.values_list("state", flat=True)) == {ActionState.QUEUED}


@pytest.mark.django_db
def test_someone_without_the_permission_cannot_approve(operator, viewer):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    with pytest.raises(approvals.ApprovalRefused, match="not allowed to approve end webinar"):
        approvals.approve(action.approval, user=viewer)
    assert not approvals.may_approve(viewer, account, "end_webinar")


@pytest.mark.django_db
def test_another_operator_approves_and_the_action_is_queued_and_sent(
    operator, second_operator, django_capture_on_commit_callbacks
):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    with django_capture_on_commit_callbacks(execute=True):
        queued = approvals.approve(action.approval, user=second_operator, client_ip="192.0.2.7")
    assert queued == [action.pk]
    action.refresh_from_db()
    # Queued and sent like any click: a task message, and the dispatch deadline it must meet.
    assert action.state == ActionState.QUEUED
    assert action.celery_task_id and action.lease_expires_at is not None
    approval = Approval.objects.get()
    assert approval.approved_by == second_operator and approval.approved_at is not None
    assert approval.requested_by == operator
    event = AccessEvent.objects.get()
    assert event.kind == AccessEvent.Kind.APPROVED
    assert (event.user, event.actor, event.client_ip) == (operator, second_operator, "192.0.2.7")
    assert event.detail["approval"] == approval.pk
    with pytest.raises(approvals.ApprovalRefused, match="olga-operator approved this already"):
        approvals.approve(approval, user=_user_like(second_operator))


def _user_like(user):
    """A third operator (not the requester, not the approver)."""
    return _user(type(user), "ossi-operator", "pw", groups=["Zoom operators"])


@pytest.mark.django_db
def test_a_rejection_cancels_with_the_reason_and_records_both_people(operator, second_operator):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    approvals.reject(action.approval, user=second_operator, reason="It is the keynote")
    action.refresh_from_db()
    assert action.state == ActionState.CANCELLED
    assert action.result_summary == "Rejected by olga-operator: It is the keynote"
    approval = Approval.objects.get()
    assert approval.state == ApprovalState.REJECTED and approval.rejected_by == second_operator
    event = AccessEvent.objects.get()
    assert (event.kind, event.user, event.actor) == ("rejected", operator, second_operator)


@pytest.mark.django_db
def test_approving_a_batch_releases_all_of_it_and_skips_a_target_requested_meanwhile(
    operator, second_operator, django_capture_on_commit_callbacks
):
    account = make_account()
    meetings = started_meetings(account, 21)
    batch, _ = create_batch(account=account, kind="end_meeting", targets=meetings, user=operator)
    # Meanwhile someone ends one of them with a click of their own.
    other, _ = request_action(
        account=account,
        kind="end_meeting",
        source="dashboard",
        target_id=meetings[3].zoom_id,
        user=second_operator,
        enqueue=False,
    )
    with django_capture_on_commit_callbacks(execute=True):
        queued = approvals.approve(batch.approval, user=second_operator)
    assert len(queued) == 20
    states = dict(batch.actions.values_list("target_id", "state"))
    assert states.pop(meetings[3].zoom_id) == ActionState.CANCELLED
    assert set(states.values()) == {ActionState.QUEUED}
    skipped = batch.actions.get(target_id=meetings[3].zoom_id)
    assert f"already requested by then (action #{other.pk})" in skipped.result_summary


# --- expiry, by the database's clock ---------------------------------------------------------


@pytest.mark.django_db
def test_a_request_expires_by_the_database_clock_never_by_this_machines(operator, monkeypatch):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    approval = action.approval
    # This process's clock two hours ahead (a worker out of step): nothing expires by it.
    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr("meetings.approvals.now", lambda: later)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert approvals.expire_due() == []
    approval.refresh_from_db()
    assert approval.state == ApprovalState.WAITING
    # The database's clock passing the expiry does.
    Approval.objects.filter(pk=approval.pk).update(expires_at=Now() - timedelta(seconds=1))
    assert approvals.expire_due() == [approval.pk]
    approval.refresh_from_db()
    action.refresh_from_db()
    assert approval.state == ApprovalState.EXPIRED and approval.decided_by is None
    assert action.state == ActionState.CANCELLED
    assert action.result_summary == "Nobody approved it within 60 minutes"


@pytest.mark.django_db
def test_the_expiry_is_set_from_the_database_clock(operator, settings):
    settings.APPROVAL_EXPIRY_MINUTES = 15
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    approval = Approval.objects.annotate(db_now=Now()).get()
    left = approval.expires_at - approval.db_now
    assert timedelta(minutes=14) < left <= timedelta(minutes=15)
    assert action.approval.expires_at == approval.expires_at


@pytest.mark.django_db
def test_an_expired_request_cannot_be_approved_even_before_the_sweep(operator, second_operator):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    Approval.objects.update(expires_at=Now() - timedelta(seconds=1))
    with pytest.raises(approvals.ApprovalRefused, match="This request expired: Nobody approved"):
        approvals.approve(action.approval, user=second_operator)
    action.refresh_from_db()
    assert action.state == ActionState.CANCELLED


# --- the pages -----------------------------------------------------------------------------------


@pytest.fixture
def waiting_end(operator):
    account = make_account()
    webinar = make_webinar(account, status="started", topic="Investor day")
    action, _ = end_webinar(account, webinar, operator)
    return webinar, action, action.approval


@pytest.mark.django_db
def test_the_requester_sees_it_awaiting_another_operator_and_cannot_approve_by_post(
    client, operator, waiting_end
):
    webinar, _, approval = waiting_end
    client.force_login(operator)
    page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert "Awaiting approval by another operator" in page
    assert reverse("approval", args=[approval.pk]) in page
    shown = client.get(reverse("approval", args=[approval.pk])).content.decode()
    assert "Awaiting approval by another operator" in shown and 'id="approve"' not in shown
    answer = client.post(reverse("approval-approve", args=[approval.pk]))
    assert answer.status_code == 403
    assert "another operator must approve or reject it" in answer.content.decode()
    approval.refresh_from_db()
    assert approval.state == ApprovalState.WAITING
    activity = client.get(reverse("activity")).content.decode()
    assert "Awaiting approval" in activity and "by another operator" in activity


@pytest.mark.django_db
def test_the_approver_sees_it_on_the_overview_and_approves_it(
    client, second_operator, operator, waiting_end
):
    webinar, action, approval = waiting_end
    client.force_login(second_operator)
    overview = client.get(reverse("overview")).content.decode()
    assert "Waiting for your approval" in overview
    assert reverse("approval", args=[approval.pk]) in overview
    page = client.get(reverse("approval", args=[approval.pk])).content.decode()
    assert 'id="approve"' in page and "Investor day" in page and str(webinar.zoom_id) in page
    answer = client.post(reverse("approval-approve", args=[approval.pk]), follow=True)
    assert answer.redirect_chain[-1][0] == reverse("webinar", args=[webinar.pk])
    assert "Approved: End webinar: Investor day" in answer.content.decode()
    action.refresh_from_db()
    assert action.state == ActionState.QUEUED
    # Who did it is on the webinar's page and the action's: who asked and who approved.
    approver = second_operator.get_username()
    assert f"by {operator.get_username()}, approved by {approver}" in answer.content.decode()
    assert f"(approved by {approver})" in answer.content.decode()  # the timeline
    action_page = client.get(reverse("action", args=[action.pk])).content.decode()
    assert f"Approved by {approver}" in action_page
    # The requester's overview lists nothing for them to approve.
    client.force_login(operator)
    assert "Waiting for your approval" not in client.get(reverse("overview")).content.decode()


@pytest.mark.django_db
def test_a_reject_from_the_page_says_nothing_was_sent(client, second_operator, waiting_end):
    webinar, action, approval = waiting_end
    client.force_login(second_operator)
    answer = client.post(
        reverse("approval-reject", args=[approval.pk]), {"reason": "Keynote"}, follow=True
    )
    assert "Nothing was sent to Zoom" in answer.content.decode()
    assert "Keynote" in answer.content.decode()
    action.refresh_from_db()
    assert action.state == ActionState.CANCELLED
    webinar_page = client.get(reverse("webinar", args=[webinar.pk])).content.decode()
    assert f"(rejected by {second_operator.get_username()})" in webinar_page


@pytest.mark.django_db
def test_the_requester_may_withdraw(client, operator, waiting_end):
    _, action, approval = waiting_end
    client.force_login(operator)
    client.post(reverse("approval-withdraw", args=[approval.pk]))
    approval.refresh_from_db()
    action.refresh_from_db()
    assert approval.state == ApprovalState.WITHDRAWN
    assert action.state == ActionState.CANCELLED


@pytest.mark.django_db
def test_a_bulk_request_of_21_says_it_awaits_approval(client, operator):
    account = make_account()
    meetings = started_meetings(account, 21)
    client.force_login(operator)
    answer = client.post(
        reverse("bulk-run"),
        {"kind": "end_meeting", "ids": [m.pk for m in meetings]},
        follow=True,
    )
    html = answer.content.decode()
    assert "It is awaiting approval by another operator." in html
    assert "Awaiting approval by another operator" in html
    assert Action.objects.filter(state=ActionState.AWAITING).count() == 21


# --- zoomctl and the admin -----------------------------------------------------------------------


@pytest.mark.django_db
def test_zoomctl_may_request_and_prints_where_to_approve(operator, settings):
    settings.DASHBOARD_URL = "https://zoom-admin.example.org"
    account = make_account()
    account.status = "connected"
    account.save()
    webinar = make_webinar(account, status="started")
    out = io.StringIO()
    call_command(
        "zoomctl", "end-webinar", str(webinar.zoom_id), "--user", operator.username, stdout=out
    )
    approval = Approval.objects.get()
    assert (
        f"waits for approval by another operator in the dashboard: "
        f"https://zoom-admin.example.org/approvals/{approval.pk}/" in out.getvalue()
    )
    assert Action.objects.get().source == "cli"
    assert Action.objects.get().state == ActionState.AWAITING


@pytest.mark.django_db
def test_only_administrators_edit_the_approval_settings(client, admin_user, operator):
    operator.is_staff = True
    operator.save()
    client.force_login(operator)
    url = reverse("admin:meetings_approvalsettings_changelist")
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 200
    row = ApprovalSettings.objects.get()
    assert row.kinds == ["end_webinar", "recover_meeting"] and row.bulk_threshold == 20
    change = reverse("admin:meetings_approvalsettings_change", args=[row.pk])
    answer = client.post(
        change, {"kinds": ["end_webinar"], "bulk_enabled": "on", "bulk_threshold": "50"}
    )
    assert answer.status_code == 302
    row.refresh_from_db()
    assert row.kinds == ["end_webinar"] and row.bulk_threshold == 50


@pytest.mark.django_db
def test_the_admin_shows_both_people_read_only(client, admin_user, operator, second_operator):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    approvals.approve(action.approval, user=second_operator)
    client.force_login(admin_user)
    page = client.get(reverse("admin:meetings_action_change", args=[action.pk])).content.decode()
    assert "oscar-operator" in page and "Approved: olga-operator at" in page
    approval_page = client.get(
        reverse("admin:meetings_approval_change", args=[action.approval.pk])
    ).content.decode()
    assert "olga-operator" in approval_page and 'name="_save"' not in approval_page


# --- a real worker, the sandbox over HTTP --------------------------------------------------------


def _zoom_calls(state, since):
    return [(r.method, r.path) for r in state.requests_since(since) if r.template]


@pytest.mark.worker
def test_approved_runs_at_zoom_and_rejected_or_expired_never_reach_it(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, operator, second_operator
):
    state = zoom_sandbox.state
    zoom = {
        name: state.add_webinar(sandbox_host["id"], topic=name, status="started")
        for name in ("Approved", "Rejected", "Expired")
    }
    mirrored = {
        name: Webinar.objects.create(
            account=sandbox_account,
            zoom_id=w["id"],
            topic=name,
            status="started",
            host_id=sandbox_host["id"],
        )
        for name, w in zoom.items()
    }
    since = state.request_seq
    asked = {name: end_webinar(sandbox_account, w, operator)[0] for name, w in mirrored.items()}
    approvals.reject(asked["Rejected"].approval, user=second_operator, reason="no")
    # The worker's beat expires what the database's clock says is past its time.
    Approval.objects.filter(action=asked["Expired"]).update(expires_at=Now())
    approvals.approve(asked["Approved"].approval, user=second_operator)

    ids = [a.pk for a in asked.values()]
    wait_until(
        lambda: Action.objects.filter(pk__in=ids, state__in=TERMINAL_STATES).count() == 3,
        60,
        "the three requests to finish",
    )
    done = {name: Action.objects.get(pk=a.pk) for name, a in asked.items()}
    assert done["Approved"].state == ActionState.SUCCEEDED, done["Approved"].result_summary
    wait_until(
        lambda: state.webinars[zoom["Approved"]["id"]]["status"] == "ended",
        20,
        "Zoom to show the approved webinar ended",
    )
    assert done["Rejected"].state == ActionState.CANCELLED
    assert done["Expired"].result_summary == "Nobody approved it within 60 minutes"
    for name in ("Rejected", "Expired"):
        assert state.webinars[zoom[name]["id"]]["status"] == "started"
        assert not [c for c in _zoom_calls(state, since) if str(zoom[name]["id"]) in c[1]]
    assert [c for c in _zoom_calls(state, since) if str(zoom["Approved"]["id"]) in c[1]]
    assert Meeting.objects.count() == 0  # nothing else was asked for


@pytest.mark.django_db
def test_the_retention_command_prunes_an_old_decided_request_with_its_actions(
    operator, second_operator
):
    account = make_account()
    action, _ = end_webinar(account, make_webinar(account, status="started"), operator)
    approvals.reject(action.approval, user=second_operator)
    batch, _ = create_batch(
        account=account, kind="end_meeting", targets=started_meetings(account, 21), user=operator
    )
    approvals.reject(batch.approval, user=second_operator)
    Action.objects.filter(state=ActionState.CANCELLED).update(
        finished_at=timezone.now() - timedelta(days=800)
    )
    Approval.objects.update(requested_at=timezone.now() - timedelta(days=800))
    type(batch).objects.update(created=timezone.now() - timedelta(days=800))
    call_command("prune_actions", stdout=io.StringIO())
    assert not Action.objects.exists() and not Approval.objects.exists()
    # The access audit keeps both decisions.
    assert AccessEvent.objects.filter(kind="rejected").count() == 2


@pytest.mark.django_db
def test_a_recovery_asked_on_the_meeting_page_waits_and_says_so(client, operator):
    account = make_account()
    meeting = make_meeting(account, status="deleted", topic="Board call")
    client.force_login(operator)
    answer = client.post(reverse("meeting-recover", args=[meeting.pk]), follow=True)
    html = answer.content.decode()
    assert "It is awaiting approval by another operator" in html
    assert "Awaiting approval by another operator." in html
    action = Action.objects.get(kind="recover_meeting")
    assert action.state == ActionState.AWAITING and action.source == "dashboard"
    assert Meeting.objects.get(pk=meeting.pk).status == "deleted"
