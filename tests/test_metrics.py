"""/metrics: Prometheus text for staff and the monitoring token, gathered from every process."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils.timezone import now
from prometheus_client.parser import text_string_to_metric_families

from meetings.metrics import observe_zoom_response, path_label
from meetings.models import Action, ActionKind, ActionSource, ActionState, ZoomAccount
from tests.test_settings import ROOT

TOKEN = "monitoring-token-0123456789"


def scrape(client, **headers):
    response = client.get(reverse("metrics"), **headers)
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def account(db):
    return ZoomAccount.objects.create(
        name="Acme", kind=ZoomAccount.Kind.SERVER_TO_SERVER, client_id="sandbox-s2s-client"
    )


def test_anonymous_scrapers_are_asked_to_authenticate(client, db):
    response = client.get(reverse("metrics"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"zoomadmin_" not in response.content


def test_a_signed_in_user_who_is_not_staff_is_refused(client, viewer, operator):
    for user in (viewer, operator):
        client.force_login(user)
        assert client.get(reverse("metrics")).status_code == 403


@override_settings(METRICS_TOKEN=TOKEN)
def test_the_monitoring_token_opens_the_metrics_and_a_wrong_one_does_not(client, db):
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 401
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert value(samples, "zoomadmin_database_up") == 1


def test_no_token_is_accepted_when_none_is_configured(client, db):
    response = client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401


def test_zoom_responses_are_counted_by_path_template_status_and_latency(staff_client):
    path = "/meetings/{meetingId}/status"
    before = scrape(staff_client)

    observe_zoom_response("PUT", path, 204, 120.0, None)
    observe_zoom_response("put", path, 404, 80.0, None)
    observe_zoom_response("PUT", path, None, 10_000.0, type("ZoomTimeout", (Exception,), {})())
    after = scrape(staff_client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("zoomadmin_zoom_requests_total", method="PUT", path=path, status="204") == 1
    assert delta("zoomadmin_zoom_requests_total", method="PUT", path=path, status="404") == 1
    assert delta("zoomadmin_zoom_requests_total", method="PUT", path=path, status="timeout") == 1
    histogram = "zoomadmin_zoom_request_duration_seconds"
    assert delta(f"{histogram}_count", method="PUT", path=path) == 3
    assert delta(f"{histogram}_bucket", method="PUT", path=path, le="0.1") == 1
    assert delta(f"{histogram}_bucket", method="PUT", path=path, le="0.25") == 2
    assert delta(f"{histogram}_sum", method="PUT", path=path) == pytest.approx(10.2)


def test_429_answers_are_counted_with_their_limit_type(staff_client):
    path = "/meetings/{meetingId}/livestream/status"
    rate_limited = type("ZoomRateLimited", (Exception,), {"limit_type": "QPS"})()
    name = "zoomadmin_zoom_rate_limited_total"
    before = scrape(staff_client)

    observe_zoom_response("PATCH", path, 429, 5.0, rate_limited)
    observe_zoom_response("PATCH", path, 429, 5.0, None)  # headers are sometimes missing
    after = scrape(staff_client)

    for limit_type in ("QPS", "unknown"):
        labels = {"method": "PATCH", "path": path, "limit_type": limit_type}
        assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_a_concrete_id_never_becomes_a_label_of_its_own():
    assert path_label("/meetings/85746065432/status") == "/meetings/{id}/status"
    assert path_label("/past_meetings/JbkqFkfqQ0e7%2BCZluSnc1g%3D%3D") == "/past_meetings/{uuid}"
    assert path_label("/users/me?page_size=300") == "/users/me"
    assert path_label("/meetings/{meetingId}") == "/meetings/{meetingId}"


def test_the_hook_never_raises_whatever_it_is_given():
    observe_zoom_response(None, None, "not a status", "slow", object())
    observe_zoom_response("GET", "/users", 200, -5, None)


def test_actions_are_counted_by_kind_and_state_with_the_queue_depth(staff_client, account):
    def action(kind, state, minutes_ago=0, target_id=None):
        return Action.objects.create(
            account=account,
            kind=kind,
            state=state,
            source=ActionSource.DASHBOARD,
            target_type="meeting",
            target_id=target_id,
            requested_at=now() - timedelta(minutes=minutes_ago),
        )

    action(ActionKind.END_MEETING, ActionState.QUEUED, minutes_ago=3, target_id=1)
    action(ActionKind.END_MEETING, ActionState.QUEUED, target_id=2)
    action(ActionKind.END_MEETING, ActionState.SUCCEEDED, target_id=3)
    action(ActionKind.END_MEETING, ActionState.SUCCEEDED, target_id=4)
    action(ActionKind.START_LIVESTREAM, ActionState.FAILED, target_id=5)

    samples = scrape(staff_client)

    def actions(kind, state):
        return value(samples, "zoomadmin_actions", kind=kind, state=state)

    assert actions("end_meeting", "queued") == 2
    assert actions("end_meeting", "succeeded") == 2
    assert actions("start_livestream", "failed") == 1
    assert actions("end_webinar", "running") == 0  # every kind and state is exported
    assert value(samples, "zoomadmin_action_queue_depth") == 2
    assert value(samples, "zoomadmin_action_oldest_queued_age_seconds") >= 180
    assert value(samples, "zoomadmin_zoom_accounts", status="connected") == 1
    assert value(samples, "zoomadmin_broker_queue_length") >= 0


def test_samples_of_other_processes_are_added_up_and_outlive_them(staff_client):
    path = "/webinars/{webinarId}/status"
    labels = {"method": "PUT", "path": path, "status": "204"}
    histogram = {"method": "PUT", "path": path}
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    before = scrape(staff_client)
    script = (
        "import django, os; django.setup()\n"
        "from meetings.metrics import observe_zoom_response\n"
        f"for _ in range(3): observe_zoom_response('PUT', {path!r}, 204, 50.0, None)\n"
        "print(os.getpid())\n"
    )

    # Workers are other processes: they share only the multiprocess directory with the web.
    # Each exits cleanly, folding its samples into the archive and removing its own files.
    pids = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "zoomadmin.settings"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        pids.append(int(result.stdout.split()[-1]))

    after = scrape(staff_client)
    requests = "zoomadmin_zoom_requests_total"
    assert value(after, requests, **labels) - value(before, requests, **labels) == 6
    count = "zoomadmin_zoom_request_duration_seconds_count"
    assert value(after, count, **histogram) - value(before, count, **histogram) == 6
    bucket = "zoomadmin_zoom_request_duration_seconds_bucket"
    le = {**histogram, "le": "0.05"}
    assert value(after, bucket, **le) - value(before, bucket, **le) == 6
    for pid in pids:
        assert not os.path.exists(os.path.join(directory, f"counter_{pid}.db"))
        assert not os.path.exists(os.path.join(directory, f"histogram_{pid}.db"))
    assert os.path.exists(os.path.join(directory, "counter_archive.db"))


def test_the_zoom_client_feeds_the_metrics_from_real_answers(
    staff_client, zoom_sandbox, zoom_sandbox_session
):
    from meetings.zoom.client import ZoomClient
    from meetings.zoom.errors import ZoomRateLimited
    from meetings.zoom.sandbox import DEFAULT_ACCOUNT_ID

    owner = zoom_sandbox.state.account_owner(DEFAULT_ACCOUNT_ID)
    meeting = zoom_sandbox.state.add_meeting(owner["id"], status="started")
    zoom_sandbox.state.set_rate_limit("light", 1)
    client = ZoomClient(zoom_sandbox_session, zoom_sandbox.api_url, timeout=5)
    path = "/meetings/{meetingId}"
    ok = {"method": "GET", "path": path, "status": "200"}
    limited = {"method": "GET", "path": path, "limit_type": "QPS"}
    before = scrape(staff_client)

    client.get_meeting(meeting["id"])
    with pytest.raises(ZoomRateLimited):
        client.get_meeting(meeting["id"])  # a second Light request in the same second
    after = scrape(staff_client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("zoomadmin_zoom_requests_total", **ok) == 1
    assert delta("zoomadmin_zoom_requests_total", **{**ok, "status": "429"}) == 1
    assert delta("zoomadmin_zoom_rate_limited_total", **limited) == 1
    assert delta("zoomadmin_zoom_request_duration_seconds_count", method="GET", path=path) == 2
