"""The audit trail in the Django admin: read-only for everyone, searchable, filterable, and
exportable as CSV; a viewer sees it, a staff member without the role does not."""

import csv
import io

import pytest
from django.urls import reverse
from django.utils.timezone import now

from meetings.actions import request_action
from meetings.models import Action, ActionState, Attempt, Batch, ZoomAccount

CHANGELIST = reverse("admin:meetings_action_changelist")
EXPORT = reverse("admin:meetings_action_export")
STREAM_KEY = "sk-admin-0a9b8c7d6e"


@pytest.fixture
def account(db):
    return ZoomAccount.objects.create(name="Acme", kind="server_to_server", client_id="x")


@pytest.fixture
def trail(account, operator):
    """A failed end by the operator (with its attempt), a queued stream configuration, a
    cancelled end whose topic tries to be a spreadsheet formula."""
    failed, _ = request_action(
        account=account,
        kind="end_meeting",
        source="dashboard",
        target_id=81234567890,
        topic="Quarterly all hands",
        user=operator,
        client_ip="203.0.113.7",
        enqueue=False,
    )
    run = Action.claim(failed.pk, task_id="task-1")
    attempt = run.start_attempt("meetingStatus")
    run.complete_attempt(
        attempt,
        outcome=Attempt.Outcome.ERROR,
        http_status=400,
        zoom_code=3003,
        message="Zoom: you are not the host of this meeting (3003)",
        duration_ms=182,
    )
    run.mark_failed("Zoom: you are not the host of this meeting (3003)", zoom_code=3003)
    configured, _ = request_action(
        account=account,
        kind="update_livestream",
        source="cli",
        target_id=81234567891,
        topic="Launch",
        params={
            "stream_url": "rtmp://live.example/app",
            "stream_key": STREAM_KEY,
            "page_url": "https://watch.example/",
        },
        enqueue=False,
    )
    cancelled, _ = request_action(
        account=account,
        kind="end_meeting",
        source="bulk",
        target_id=81234567892,
        topic='=HYPERLINK("http://evil.example")',
        enqueue=False,
    )
    cancelled.cancel()
    return {"failed": failed, "configured": configured, "cancelled": cancelled}


@pytest.fixture
def staff_viewer(viewer):
    viewer.is_staff = True
    viewer.save()
    return viewer


def test_a_superuser_sees_who_did_what_and_what_zoom_said(client, admin_user, trail):
    client.force_login(admin_user)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    text = page.content.decode()
    for expected in ("oscar-operator", "Quarterly all hands", "81234567890", "3003", "Failed"):
        assert expected in text
    assert "Export these as CSV" in text
    # An action nobody signed in asked for says where it came from, in words.
    assert "(Bulk action)" in text and "(bulk)" not in text
    # no way to add, change or delete from here
    assert reverse("admin:meetings_action_add") not in text
    assert 'name="action"' not in text  # no bulk "delete selected"


def test_an_action_page_shows_its_attempts_and_never_a_stream_key(client, admin_user, trail):
    client.force_login(admin_user)
    failed = client.get(reverse("admin:meetings_action_change", args=[trail["failed"].pk]))
    assert failed.status_code == 200
    text = failed.content.decode()
    assert "meetingStatus" in text and "182" in text
    assert "203.0.113.7" in text
    # Its fields are named as a supervisor would say them.
    assert "Client IP address" in text and "HTTP status" in text
    assert "Client ip" not in text and "Http status" not in text
    assert "you are not the host of this meeting" in text
    assert 'type="submit"' not in text or "Save" not in text
    configured = client.get(reverse("admin:meetings_action_change", args=[trail["configured"].pk]))
    assert configured.status_code == 200
    body = configured.content.decode()
    assert "•••• (set)" in body
    assert STREAM_KEY not in body
    assert trail["configured"].lease_token not in body or not trail["configured"].lease_token


def test_the_list_says_what_zoom_answered_and_when_to_the_second(client, admin_user, trail):
    client.force_login(admin_user)
    text = client.get(CHANGELIST).content.decode()
    # Zoom's answer, with its HTTP status and code, in one column a supervisor can scan.
    assert "HTTP 400 · code 3003: Zoom: you are not the host of this meeting (3003)" in text
    # Times to the second, 24-hour, with the zone: retries a second apart are told apart.
    requested = trail["failed"].requested_at
    assert f"{requested:%H:%M:%S} UTC" in text
    assert "a.m." not in text and "p.m." not in text


def test_an_attempt_s_wait_reads_in_seconds_not_as_a_raw_float(client, admin_user, trail):
    action = trail["failed"]
    Attempt.objects.filter(action=action).update(retry_after=0.812152068056158)
    client.force_login(admin_user)
    text = client.get(reverse("admin:meetings_action_change", args=[action.pk])).content.decode()
    assert "0.8 s" in text
    assert "0.812152068056158" not in text


def test_an_ordinary_attempt_is_not_marked_with_a_red_cross(client, admin_user, trail):
    # "After reclaim" was a boolean icon: a red cross on every attempt that went normally.
    action = trail["failed"]
    client.force_login(admin_user)
    url = reverse("admin:meetings_action_change", args=[action.pk])
    assert "icon-no" not in client.get(url).content.decode()
    Attempt.objects.filter(action=action).update(after_reclaim=True)
    text = " ".join(client.get(url).content.decode().split())
    assert '<td class="field-reclaimed"> <p>yes</p> </td>' in text


def test_admin_pages_do_not_ask_for_a_favicon_that_is_not_there(client, admin_user, trail):
    client.force_login(admin_user)
    text = client.get(CHANGELIST).content.decode()
    assert '<link rel="icon" href="data:,">' in text
    assert "zoomadmin: audit trail and settings" in text


def test_the_list_has_room_for_its_columns(client, admin_user, trail):
    # The navigation sidebar took 300 px, and at 1280 px the last columns ran past the edge.
    client.force_login(admin_user)
    text = client.get(CHANGELIST).content.decode()
    assert 'id="nav-sidebar"' not in text
    # One account: no account column (its name on every row says nothing); two: the column.
    assert "column-account" not in text
    ZoomAccount.objects.create(name="Second", kind="server_to_server", client_id="y")
    assert "column-account" in client.get(CHANGELIST).content.decode()


def test_nothing_can_be_changed_or_deleted_even_by_a_superuser(client, admin_user, trail):
    client.force_login(admin_user)
    pk = trail["failed"].pk
    assert client.get(reverse("admin:meetings_action_add")).status_code == 403
    assert client.get(reverse("admin:meetings_action_delete", args=[pk])).status_code == 403
    posted = client.post(
        reverse("admin:meetings_action_change", args=[pk]), {"result_summary": "all fine"}
    )
    assert posted.status_code == 403
    trail["failed"].refresh_from_db()
    assert trail["failed"].result_summary == "Zoom: you are not the host of this meeting (3003)"


def test_deleting_an_audit_record_says_they_are_never_deleted_in_the_admin_s_page(
    client, admin_user, trail, account, operator
):
    client.force_login(admin_user)
    batch = Batch.objects.create(kind="end_meeting", account=account, requested_by=operator)
    for url in (
        reverse("admin:meetings_action_delete", args=[trail["failed"].pk]),
        reverse("admin:meetings_batch_delete", args=[batch.pk]),
    ):
        response = client.get(url)
        page = response.content.decode()
        assert response.status_code == 403
        assert "Audit records are never deleted" in page
        assert 'id="site-name"' in page  # the admin's header, not the dashboard's
        assert "ask an administrator" not in page
    assert Action.objects.filter(pk=trail["failed"].pk).exists()


def test_filters_and_search_narrow_the_list(client, admin_user, trail):
    client.force_login(admin_user)
    failed_only = client.get(CHANGELIST, {"state__exact": "failed"}).content.decode()
    assert "Quarterly all hands" in failed_only and "Launch" not in failed_only
    by_id = client.get(CHANGELIST, {"q": "81234567891"}).content.decode()
    assert "Launch" in by_id and "Quarterly all hands" not in by_id
    by_user = client.get(CHANGELIST, {"q": "oscar"}).content.decode()
    assert "Quarterly all hands" in by_user and "Launch" not in by_user
    by_kind = client.get(CHANGELIST, {"kind__exact": "update_livestream"}).content.decode()
    assert "Launch" in by_kind and "Quarterly all hands" not in by_kind
    today = now()
    drill = client.get(
        CHANGELIST,
        {
            "requested_at__year": today.year,
            "requested_at__month": today.month,
            "requested_at__day": today.day,
        },
    )
    assert drill.status_code == 200 and "Launch" in drill.content.decode()


def read_csv(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_export_is_the_filtered_list(client, admin_user, trail):
    client.force_login(admin_user)
    rows = read_csv(client.get(EXPORT, {"state__exact": "failed"}))
    assert len(rows) == 1
    (row,) = rows
    assert row["requested_by"] == "oscar-operator"
    assert row["client_ip"] == "203.0.113.7"
    assert row["target_id"] == "81234567890"
    assert row["zoom_code"] == "3003"
    assert row["result_summary"] == "Zoom: you are not the host of this meeting (3003)"
    assert row["attempts"] == "1"
    everything = read_csv(client.get(EXPORT))
    assert len(everything) == 3
    assert all(STREAM_KEY not in value for r in everything for value in r.values())


def test_a_topic_that_looks_like_a_formula_is_exported_as_text(client, admin_user, trail):
    client.force_login(admin_user)
    rows = read_csv(client.get(EXPORT, {"state__exact": "cancelled"}))
    assert rows[0]["topic"].startswith("'=HYPERLINK")


def test_a_bad_filter_in_the_export_is_a_clear_400(client, admin_user, trail):
    client.force_login(admin_user)
    response = client.get(EXPORT, {"nonsense__field": "1"})
    assert response.status_code == 400
    assert b"not valid" in response.content


def test_a_viewer_reads_and_exports_the_trail_but_changes_nothing(client, staff_viewer, trail):
    client.force_login(staff_viewer)
    assert client.get(CHANGELIST).status_code == 200
    page = client.get(reverse("admin:meetings_action_change", args=[trail["failed"].pk]))
    assert page.status_code == 200 and b"meetingStatus" in page.content
    assert len(read_csv(client.get(EXPORT))) == 3
    assert client.get(reverse("admin:meetings_action_add")).status_code == 403
    assert client.get(reverse("admin:meetings_batch_changelist")).status_code == 200


def test_staff_without_the_viewer_role_cannot_see_the_trail(client, outsider, trail):
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(EXPORT).status_code == 403


def test_someone_who_is_not_staff_is_sent_to_log_in(client, operator, trail):
    client.force_login(operator)
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_batch_shows_its_progress_and_items(client, admin_user, account, operator):
    batch = Batch.objects.create(kind="end_meeting", account=account, requested_by=operator)
    for target in (81000000001, 81000000002):
        request_action(
            account=account,
            kind="end_meeting",
            source="bulk",
            target_id=target,
            batch=batch,
            enqueue=False,
        )
    batch.total = 2
    batch.save()
    batch.actions.first().cancel()
    client.force_login(admin_user)
    listing = client.get(reverse("admin:meetings_batch_changelist")).content.decode()
    assert "1/2 done" in listing
    detail = client.get(reverse("admin:meetings_batch_change", args=[batch.pk])).content.decode()
    assert "81000000001" in detail and "81000000002" in detail
    assert Action.objects.filter(batch=batch, state=ActionState.CANCELLED).count() == 1


def test_the_roles_exist_with_one_permission_per_action_kind(db):
    from django.contrib.auth.models import Group

    viewers = Group.objects.get(name="Zoom viewers")
    operators = Group.objects.get(name="Zoom operators")
    viewer_perms = set(viewers.permissions.values_list("codename", flat=True))
    operator_perms = set(operators.permissions.values_list("codename", flat=True))
    assert {"view_action", "view_attempt", "view_meeting", "view_webinar"} <= viewer_perms
    assert not any(p.startswith(("add_", "change_", "delete_")) for p in viewer_perms)
    assert "end_meeting" not in viewer_perms
    assert operator_perms - viewer_perms == {
        "end_meeting",
        "recover_meeting",
        "end_webinar",
        "manage_livestream",
        "fetch_past_meeting",
        "sync_account",
    }


def test_a_live_stream_permission_alone_does_not_allow_ending(db, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("stream-only")
    user.user_permissions.add(Permission.objects.get(codename="manage_livestream"))
    user = django_user_model.objects.get(pk=user.pk)
    assert user.has_perm("meetings.manage_livestream")
    assert not user.has_perm("meetings.end_meeting")
