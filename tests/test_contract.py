"""Contract checking: the sandbox validates what it receives and what it answers against Zoom's
OpenAPI spec, catches a client that breaks it, and never breaks it itself."""

import json
from pathlib import Path

import pytest
import requests
from django.conf import settings
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from meetings.zoom.sandbox.contract import (
    OPERATIONS,
    SPEC_PATH,
    ContractChecker,
    SpecMissing,
    load_subset,
)
from tests.fixtures.sandbox import fail_on_contract_violations

TIMEOUT = 5
STREAM = {
    "stream_url": "rtmp://live.example/app",
    "stream_key": "k-123",
    "page_url": "https://watch.example/live",
    "resolution": "720p",
}


def api(sandbox, session, method, path, **kwargs):
    return session.request(method, sandbox.api_url + path, timeout=TIMEOUT, **kwargs)


def fake_request(method, path, **kwargs):
    headers = {"Authorization": "Bearer t", "Accept": "application/json"}
    headers |= kwargs.pop("headers", {})
    headers = {k: v for k, v in headers.items() if v}
    builder = EnvironBuilder(
        method=method, path=path, base_url="http://127.0.0.1:1", headers=headers, **kwargs
    )
    return Request(builder.get_environ())


@pytest.fixture(scope="module")
def checker():
    return ContractChecker(settings.ZOOM_OPENAPI_SPEC)


def test_the_spec_is_found_through_settings():
    assert Path(settings.ZOOM_OPENAPI_SPEC).is_file(), "the repository carries the trimmed spec"


def test_the_spec_the_project_reads_is_inside_the_repository():
    """A clone has no shared/ beside it: nothing may read the spec from there."""
    repository = Path(settings.BASE_DIR).resolve()
    assert Path(settings.ZOOM_OPENAPI_SPEC).resolve().is_relative_to(repository)
    assert SPEC_PATH.resolve().is_relative_to(repository)
    assert SPEC_PATH.is_file()


def test_the_carried_spec_holds_every_operation_we_use_with_its_source_noted():
    document = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert "c3d029976e6d5e19c16023bc1add6608605bc3a4" in document["x-zoomadmin-source"]
    assert document["info"]["version"] == "2.0.0"
    for path, method in OPERATIONS:
        assert method in document["paths"][path], (path, method)


def test_a_missing_spec_fails_loudly(tmp_path):
    with pytest.raises(SpecMissing, match="ZOOM_OPENAPI_SPEC"):
        ContractChecker(tmp_path / "nowhere.json")


def test_the_extracted_subset_is_a_valid_openapi_document_with_our_operations():
    from openapi_spec_validator import validate

    subset = load_subset(str(settings.ZOOM_OPENAPI_SPEC))
    validate(subset)

    operation_ids = {subset["paths"][path][method]["operationId"] for path, method in OPERATIONS}
    assert operation_ids == {
        "meetingStatus", "webinarStatus", "pastMeetingDetails", "getMeetingLiveStreamDetails",
        "meetingLiveStreamUpdate", "meetingLiveStreamStatusUpdate", "meeting", "webinar",
        "users", "user", "meetings", "webinars", "pastWebinars", "dashboardMeetings",
        "pastMeetingParticipants", "getWebinarLiveStreamDetails", "webinarLiveStreamUpdate",
        "webinarLiveStreamStatusUpdate",
    }  # fmt: skip
    status = subset["paths"]["/meetings/{meetingId}/status"]["put"]
    assert status["requestBody"]["content"].keys() == {"application/json"}


# --- what the checker catches ----------------------------------------------------------------
def test_a_multipart_body_breaks_the_contract(zoom_sandbox, zoom_sandbox_session):
    meeting = zoom_sandbox.state.add_meeting(
        zoom_sandbox.state.account_owner("sandbox-account")["id"], status="started"
    )

    # the body the Postman-generated samples send
    answer = api(
        zoom_sandbox,
        zoom_sandbox_session,
        "PUT",
        f"/meetings/{meeting['id']}/status",
        files={"action": (None, "end")},
    )

    assert answer.json()["code"] == 300
    violations = zoom_sandbox.take_contract_violations()
    assert len(violations) == 1
    assert violations[0]["kind"] == "request"
    assert "multipart/form-data" in violations[0]["problem"]


def test_a_missing_action_breaks_the_contract(zoom_sandbox, zoom_sandbox_session):
    meeting = zoom_sandbox.state.add_meeting(
        zoom_sandbox.state.account_owner("sandbox-account")["id"], status="started"
    )

    answer = api(
        zoom_sandbox, zoom_sandbox_session, "PUT", f"/meetings/{meeting['id']}/status", json={}
    )

    assert answer.status_code == 400
    (violation,) = zoom_sandbox.take_contract_violations()
    assert "action" in violation["problem"]


def test_a_wrong_field_and_an_unknown_operation_break_the_contract(checker):
    too_long = fake_request(
        "PATCH",
        "/v2/meetings/85746065123/livestream/status",
        json={"action": "start", "settings": {"display_name": "x" * 51}},
    )
    unknown = fake_request("DELETE", "/v2/meetings/85746065123")
    no_token = fake_request("GET", "/v2/users/me", headers={"Authorization": ""})
    fine = fake_request("PUT", "/v2/meetings/85746065123/status", json={"action": "end"})

    assert checker.check_request(too_long)
    assert checker.check_request(unknown)
    assert checker.check_request(no_token)
    assert checker.check_request(fine) == []


def test_a_wrong_answer_breaks_the_contract(checker):
    request = fake_request("GET", "/v2/past_meetings/85746065123")

    def answer(body, status=200):
        return Response(json.dumps(body), status=status, content_type="application/json")

    good = answer({"uuid": "a==", "id": 85746065123, "type": 2, "participants_count": 3})
    string_id = answer({"uuid": "a==", "id": "85746065123"})
    bad_error = answer({"message": "no code"}, status=404)
    undocumented = answer({"code": 1, "message": "teapot"}, status=418)

    assert checker.check_response(request, good) == []
    assert "integer" in checker.check_response(request, string_id)[0]
    assert "code" in checker.check_response(request, bad_error)[0]
    assert checker.check_response(request, undocumented)


# --- the sandbox keeps the contract ----------------------------------------------------------
def test_every_operation_the_sandbox_answers_keeps_the_contract(zoom_sandbox, zoom_sandbox_session):
    state = zoom_sandbox.state
    owner = state.account_owner("sandbox-account")
    live = state.add_meeting(owner["id"], "Live", status="started")
    waiting = state.add_meeting(owner["id"], "Later")
    state.add_meeting(owner["id"], "Recurring", type=3)
    deleted = state.add_meeting(owner["id"], status="deleted")
    webinar = state.add_webinar(owner["id"], "Webinar", status="started")
    state.add_past_instance(waiting["id"], "/awkward//uuid==")
    for _ in range(3):
        state.add_meeting(owner["id"])
    s = zoom_sandbox_session

    calls = [
        ("GET", "/users", {"params": {"page_size": 300}}),
        ("GET", "/users/me", {}),
        ("GET", f"/users/{owner['email']}", {}),
        ("GET", "/users/nobody@example.com", {}),
        ("GET", "/users/me/meetings", {"params": {"type": "scheduled", "page_size": 2}}),
        ("GET", "/users/me/meetings", {"params": {"type": "live"}}),
        ("GET", "/users/me/meetings", {"params": {"type": "upcoming"}}),
        ("GET", "/users/me/meetings", {"params": {"next_page_token": "expired"}}),
        ("GET", "/users/me/webinars", {"params": {"page_size": 300}}),
        ("GET", f"/meetings/{live['id']}", {}),
        ("GET", f"/meetings/{deleted['id']}", {}),
        ("GET", f"/webinars/{webinar['id']}", {}),
        ("GET", "/webinars/12345678901", {}),
        ("GET", f"/past_meetings/{waiting['id']}", {}),
        ("GET", "/past_meetings/%252Fawkward%252F%252Fuuid%253D%253D", {}),
        ("GET", f"/past_meetings/{live['id']}", {}),
        ("PATCH", f"/meetings/{live['id']}/livestream", {"json": STREAM}),
        ("GET", f"/meetings/{live['id']}/livestream", {}),
        ("GET", f"/meetings/{waiting['id']}/livestream", {}),
        ("PATCH", f"/meetings/{waiting['id']}/livestream/status", {"json": {"action": "start"}}),
        (
            "PATCH",
            f"/meetings/{live['id']}/livestream/status",
            {
                "json": {
                    "action": "start",
                    "settings": {"active_speaker_name": False, "display_name": "Ops"},
                }
            },
        ),
        ("PATCH", f"/meetings/{live['id']}/livestream", {"json": STREAM}),
        ("PATCH", f"/meetings/{live['id']}/livestream/status", {"json": {"action": "stop"}}),
        ("PUT", f"/meetings/{waiting['id']}/status", {"json": {"action": "end"}}),
        ("PUT", f"/meetings/{live['id']}/status", {"json": {"action": "end"}}),
        ("PUT", f"/meetings/{deleted['id']}/status", {"json": {"action": "recover"}}),
        ("PUT", "/meetings/12345678901/status", {"json": {"action": "end"}}),
        ("PUT", f"/webinars/{webinar['id']}/status", {"json": {"action": "end"}}),
        ("PUT", f"/webinars/{webinar['id']}/status", {"json": {"action": "end"}}),
        ("GET", f"/past_webinars/{webinar['id']}/instances", {}),
        ("GET", "/past_webinars/12345678901/instances", {}),
    ]
    statuses = [api(zoom_sandbox, s, method, path, **kw).status_code for method, path, kw in calls]

    # errors in XML (no Accept: application/json) and a rate-limited answer keep it too
    requests.get(
        f"{zoom_sandbox.api_url}/meetings/12345678901",
        timeout=TIMEOUT,
        headers={"Authorization": s.headers["Authorization"]},
    )
    state.set_rate_limit("light", 1)
    limited = [api(zoom_sandbox, s, "GET", "/users/me").status_code for _ in range(2)]
    state.set_rate_limit("light", None)
    state.set_faults(error_rate=1.0)
    failed = [api(zoom_sandbox, s, "GET", "/users/me").status_code for _ in range(2)]
    state.set_faults(error_rate=1.0, html_errors=True)
    failed += [api(zoom_sandbox, s, "GET", "/users/me").status_code for _ in range(2)]
    state.set_faults()

    assert {200, 204, 400, 404} <= set(statuses)
    assert 429 in limited
    assert failed == [500, 503, 502, 503]
    assert zoom_sandbox.take_contract_violations() == []


def test_the_fixture_fails_a_test_that_broke_the_contract(zoom_sandbox, zoom_sandbox_session):
    owner = zoom_sandbox.state.account_owner("sandbox-account")
    meeting = zoom_sandbox.state.add_meeting(owner["id"], status="started")
    api(
        zoom_sandbox,
        zoom_sandbox_session,
        "PUT",
        f"/meetings/{meeting['id']}/status",
        data={"action": "end"},
    )
    violations = zoom_sandbox.take_contract_violations()

    # what the fixture's teardown does with them
    with pytest.raises(pytest.fail.Exception) as failed:
        fail_on_contract_violations(violations)

    message = str(failed.value)
    assert "Zoom API contract violations" in message
    assert f"request PUT /v2/meetings/{meeting['id']}/status → 400" in message
    assert "application/x-www-form-urlencoded" in message
    fail_on_contract_violations([])  # nothing to report: passes


def test_violation_messages_never_repeat_a_stream_key(zoom_sandbox, zoom_sandbox_session):
    owner = zoom_sandbox.state.account_owner("sandbox-account")
    meeting = zoom_sandbox.state.add_meeting(owner["id"], status="started")
    body = STREAM | {"stream_key": "do-not-log-me", "resolution": 1080}

    api(
        zoom_sandbox,
        zoom_sandbox_session,
        "PATCH",
        f"/meetings/{meeting['id']}/livestream",
        json=body,
    )

    violations = zoom_sandbox.take_contract_violations()
    assert violations
    assert all("do-not-log-me" not in v["problem"] for v in violations)
    assert all("do-not-log-me" not in str(r.as_json()) for r in zoom_sandbox.state.requests)
