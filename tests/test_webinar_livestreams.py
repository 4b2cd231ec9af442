"""Webinar live streams at the Zoom edge (issue 16): the client's four methods send what the spec
documents, the sandbox answers them as strictly as Zoom (validation, refusals, scopes, the
30-second start limit) and keeps the contract. Real HTTP to the sandbox where it says so."""

import json

import pytest
import requests

from meetings.zoom.client import ZoomClient
from meetings.zoom.errors import ZoomBadRequest, ZoomRateLimited, ZoomScopeMissing
from meetings.zoom.sandbox import DEFAULT_ACCOUNT_ID, GRANULAR_ADMIN_SCOPES
from meetings.zoom.types import LiveStream
from tests.test_zoom_client import no_content, ok, path_of, stub_client

SECRET_KEY = "wl-secret-key-7f3a9c"
STREAM = {
    "stream_url": "rtmp://live.example.com/app",
    "stream_key": SECRET_KEY,
    "page_url": "https://watch.example.com/townhall",
}
TIMEOUT = 5


# --- the client's requests (a stub at the HTTP edge) ------------------------------------------


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (
            lambda c: c.update_webinar_livestream(
                91234567890, **STREAM | {"stream_key": "k"}, resolution="1080p"
            ),
            "PATCH",
            "/v2/webinars/91234567890/livestream",
            {**STREAM, "stream_key": "k", "resolution": "1080p"},
        ),
        (
            lambda c: c.start_webinar_livestream(
                91234567890, active_speaker_name=False, display_name="Town hall"
            ),
            "PATCH",
            "/v2/webinars/91234567890/livestream/status",
            {
                "action": "start",
                "settings": {"active_speaker_name": False, "display_name": "Town hall"},
            },
        ),
        (
            lambda c: c.start_webinar_livestream(91234567890),
            "PATCH",
            "/v2/webinars/91234567890/livestream/status",
            {"action": "start"},
        ),
        (
            lambda c: c.stop_webinar_livestream("91234567890"),
            "PATCH",
            "/v2/webinars/91234567890/livestream/status",
            {"action": "stop"},
        ),
    ],
)
def test_each_webinar_stream_call_sends_its_documented_json_request(call, method, path, body):
    client, adapter = stub_client(no_content())

    assert call(client) is None

    request = adapter.sent[0]
    assert (request.method, path_of(request)) == (method, path)
    assert json.loads(request.body) == body
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"


def test_reading_a_webinars_stream_parses_zooms_answer():
    client, adapter = stub_client(ok({**STREAM, "resolution": "720p"}))

    stream = client.get_webinar_livestream(91234567890)

    assert stream == LiveStream(**STREAM, resolution="720p")
    assert adapter.sent[0].method == "GET"
    assert path_of(adapter.sent[0]) == "/v2/webinars/91234567890/livestream"


def test_throttle_is_asked_for_the_light_label_of_each_webinar_stream_operation():
    labels = []
    client, _ = stub_client(no_content(), no_content(), throttle=labels.append)

    client.start_webinar_livestream(1)
    client.update_webinar_livestream(1, **STREAM)

    assert labels == ["light", "light"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stream_url": "u" * 1025}, "stream_url"),
        ({"stream_key": "k" * 513}, "stream_key"),
        ({"page_url": "not a url"}, "page_url"),
        ({"resolution": "4k"}, "resolution"),
    ],
)
def test_a_webinar_stream_zoom_would_refuse_is_refused_before_sending(change, field):
    client, adapter = stub_client(no_content())
    kwargs = {**STREAM, "resolution": None, **change}

    with pytest.raises(ValueError) as refused:
        client.update_webinar_livestream(1, **kwargs)

    assert field in str(refused.value)
    assert SECRET_KEY not in str(refused.value)
    assert adapter.sent == []


@pytest.mark.parametrize("bad", [0, -1, 2**63, "12a", "", None, True])
def test_a_webinar_id_that_is_not_zooms_is_refused_before_any_request(bad):
    client, adapter = stub_client(no_content())

    for call in (
        client.get_webinar_livestream,
        client.stop_webinar_livestream,
        client.start_webinar_livestream,
    ):
        with pytest.raises(ValueError):
            call(bad)
    assert adapter.sent == []


# --- against the sandbox, over HTTP ---------------------------------------------------------------


@pytest.fixture
def zoom(zoom_sandbox, zoom_sandbox_token):
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {zoom_sandbox_token}"
        yield ZoomClient(session, zoom_sandbox.api_url, timeout=2)


@pytest.fixture
def world(zoom_sandbox):
    return zoom_sandbox.state


@pytest.fixture
def host(world):
    return world.add_user("webinar-host@sandbox.example", "Wen", "Host")


def test_a_webinar_stream_is_configured_read_started_and_stopped(zoom, world, host):
    webinar = world.add_webinar(host["id"], "Town hall", status="started")

    zoom.update_webinar_livestream(webinar["id"], **STREAM, resolution="1080p")
    stream = zoom.get_webinar_livestream(webinar["id"])
    zoom.start_webinar_livestream(webinar["id"], active_speaker_name=True, display_name="Ops")
    streaming = world.webinars[webinar["id"]]["livestreaming"]
    zoom.stop_webinar_livestream(webinar["id"])

    assert stream == LiveStream(**STREAM, resolution="1080p")
    assert streaming is True
    assert world.webinars[webinar["id"]]["livestreaming"] is False


def test_zoom_refuses_to_start_a_webinar_stream_that_cannot_run(zoom, world, host):
    waiting = world.add_webinar(host["id"], livestream=STREAM)
    unconfigured = world.add_webinar(host["id"], status="started")

    with pytest.raises(ZoomBadRequest) as not_started:
        zoom.start_webinar_livestream(waiting["id"])
    with pytest.raises(ZoomBadRequest) as not_configured:
        zoom.start_webinar_livestream(unconfigured["id"])

    # the spec's words: "Webinar {0} has not started" (code 200) and "not configured with a
    # custom streaming service" (code 3000); both permanent
    assert not_started.value.code == 200 and not_started.value.permanent
    assert not_configured.value.code == 3000 and not_configured.value.permanent
    assert world.webinars[waiting["id"]]["livestreaming"] is False


def test_zoom_refuses_new_settings_while_a_webinar_streams_and_never_echoes_the_key(
    zoom, world, host
):
    webinar = world.add_webinar(host["id"], status="started", livestream=STREAM, livestreaming=True)

    with pytest.raises(ZoomBadRequest) as refused:
        zoom.update_webinar_livestream(webinar["id"], **STREAM | {"stream_key": "new-key"})

    assert refused.value.code == 3000
    assert SECRET_KEY not in refused.value.describe()
    assert world.webinars[webinar["id"]]["livestream"]["stream_key"] == SECRET_KEY


def test_a_second_start_within_30_seconds_is_rate_limited(zoom, world, host):
    webinar = world.add_webinar(host["id"], status="started", livestream=STREAM)
    zoom.start_webinar_livestream(webinar["id"])

    with pytest.raises(ZoomRateLimited) as limited:
        zoom.start_webinar_livestream(webinar["id"])

    # Retry-After is a whole second, rounded up
    assert limited.value.retry_after is not None and 0 < limited.value.retry_after <= 31


def test_a_webinar_that_ended_or_never_existed_is_not_found(zoom, world, host):
    webinar = world.add_webinar(host["id"], status="started", livestream=STREAM)
    zoom.start_webinar_livestream(webinar["id"])
    world.end_webinar(webinar["id"])

    # the spec documents no 404 for these operations: 400, code 3001 "Webinar does not exist"
    with pytest.raises(ZoomBadRequest) as ended:
        zoom.stop_webinar_livestream(webinar["id"])
    with pytest.raises(ZoomBadRequest) as unknown:
        zoom.get_webinar_livestream(12345678901)
    assert ended.value.code == unknown.value.code == 3001
    assert ended.value.describe() == "Zoom: webinar not found or has expired (3001)"
    # ending the webinar stopped its stream (Zoom sends no webinar stream event for it)
    assert world.webinars[webinar["id"]]["livestreaming"] is False


def test_a_host_without_a_webinar_licence_is_refused_with_zooms_code_200(zoom, world):
    unlicensed = world.add_user("nolicence@sandbox.example", "No", "Licence")
    unlicensed["webinar_licence"] = False
    webinar = world.add_webinar(unlicensed["id"], status="started")

    with pytest.raises(ZoomBadRequest) as refused:
        zoom.update_webinar_livestream(webinar["id"], **STREAM)

    assert refused.value.code == 200
    assert "webinar plan" in refused.value.message.lower()


def test_the_sandbox_validates_webinar_stream_bodies_as_the_spec(
    zoom_sandbox, zoom_sandbox_session
):
    world = zoom_sandbox.state
    owner = world.account_owner(DEFAULT_ACCOUNT_ID)
    webinar = world.add_webinar(owner["id"], status="started")
    url = f"{zoom_sandbox.api_url}/webinars/{webinar['id']}/livestream"
    s = zoom_sandbox_session

    missing_key = s.patch(url, json={**STREAM, "stream_key": ""}, timeout=TIMEOUT)
    bad_page = s.patch(url, json={**STREAM, "page_url": "nowhere"}, timeout=TIMEOUT)
    long_name = s.patch(
        url + "/status",
        json={"action": "start", "settings": {"display_name": "n" * 51}},
        timeout=TIMEOUT,
    )
    bad_action = s.patch(url + "/status", json={"action": "pause"}, timeout=TIMEOUT)
    form_body = s.patch(url, data=STREAM, timeout=TIMEOUT)

    for answer, field in (
        (missing_key, "stream_key"),
        (bad_page, "page_url"),
        (long_name, "settings.display_name"),
        (bad_action, "action"),
    ):
        assert answer.status_code == 400
        assert answer.json()["code"] == 300
        assert answer.json()["errors"][0]["field"] == field
    assert form_body.status_code == 400 and form_body.json()["code"] == 300
    # the contract checker saw the invalid requests for what they are, and no invalid answer
    problems = zoom_sandbox.take_contract_violations()
    assert all(p["problem"] and SECRET_KEY not in p["problem"] for p in problems)
    assert not [p for p in problems if p.get("kind") == "response"]


def test_every_webinar_stream_answer_keeps_the_contract(zoom_sandbox, zoom_sandbox_session):
    world = zoom_sandbox.state
    owner = world.account_owner(DEFAULT_ACCOUNT_ID)
    live = world.add_webinar(owner["id"], status="started")
    waiting = world.add_webinar(owner["id"], livestream=STREAM)
    s = zoom_sandbox_session
    base = zoom_sandbox.api_url

    calls = [
        ("GET", f"/webinars/{live['id']}/livestream", {}),
        ("PATCH", f"/webinars/{live['id']}/livestream", {"json": {**STREAM, "resolution": "720p"}}),
        ("GET", f"/webinars/{live['id']}/livestream", {}),
        (
            "PATCH",
            f"/webinars/{live['id']}/livestream/status",
            {"json": {"action": "start", "settings": {"active_speaker_name": True}}},
        ),
        ("PATCH", f"/webinars/{live['id']}/livestream/status", {"json": {"action": "start"}}),
        ("PATCH", f"/webinars/{live['id']}/livestream", {"json": STREAM}),
        ("PATCH", f"/webinars/{live['id']}/livestream/status", {"json": {"action": "stop"}}),
        ("PATCH", f"/webinars/{waiting['id']}/livestream/status", {"json": {"action": "start"}}),
        ("GET", "/webinars/12345678901/livestream", {}),
        ("PATCH", "/webinars/12345678901/livestream/status", {"json": {"action": "stop"}}),
    ]
    statuses = [
        s.request(method, base + path, timeout=TIMEOUT, **kw).status_code
        for method, path, kw in calls
    ]

    assert statuses == [200, 204, 200, 204, 429, 400, 204, 400, 400, 400]
    assert zoom_sandbox.take_contract_violations() == []


def test_a_granular_app_without_the_stream_status_scope_is_refused_naming_it(zoom_sandbox):
    world = zoom_sandbox.state
    scopes = tuple(
        s for s in GRANULAR_ADMIN_SCOPES if s != "webinar:update:livestream_status:admin"
    )
    world.add_app(
        "no-stream-app",
        "no-stream-secret",
        DEFAULT_ACCOUNT_ID,
        kind="server_to_server",
        scopes=scopes,
    )
    token = requests.post(
        f"{zoom_sandbox.oauth_url}/oauth/token",
        params={"grant_type": "account_credentials", "account_id": DEFAULT_ACCOUNT_ID},
        auth=("no-stream-app", "no-stream-secret"),
        timeout=TIMEOUT,
    ).json()["access_token"]
    owner = world.account_owner(DEFAULT_ACCOUNT_ID)
    webinar = world.add_webinar(owner["id"], status="started", livestream=STREAM)
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        client = ZoomClient(session, zoom_sandbox.api_url, timeout=2)
        client.update_webinar_livestream(webinar["id"], **STREAM)  # that scope it has

        with pytest.raises(ZoomScopeMissing) as refused:
            client.start_webinar_livestream(webinar["id"])

    text = refused.value.describe()
    assert "webinar:update:livestream_status:admin" in text and "webinar:write:admin" in text
    assert "start and stop webinars' live streams" in text
