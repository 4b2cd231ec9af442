"""The sandbox as strict as Zoom on webinar licences, the webinar list's paging, and a Free
account's daily caps (issue 11), over real HTTP."""

import math
from datetime import UTC, datetime

import pytest
import requests

from meetings.zoom.sandbox import DEFAULT_S2S_CLIENT_ID, DEFAULT_S2S_CLIENT_SECRET, Sandbox
from meetings.zoom.sandbox.seed import seed_world
from meetings.zoom.sandbox.state import DEFAULT_ACCOUNT_ID, iso

NO_LICENCE = {"code": 200, "message": "Cannot use webinar API, you need to subscribe webinar plan"}


def s2s_session(sandbox):
    token = requests.post(
        f"{sandbox.oauth_url}/oauth/token",
        params={"grant_type": "account_credentials", "account_id": DEFAULT_ACCOUNT_ID},
        auth=(DEFAULT_S2S_CLIENT_ID, DEFAULT_S2S_CLIENT_SECRET),
        timeout=5,
    ).json()["access_token"]
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    return session


def get(sandbox, session, path, **params):
    return session.get(f"{sandbox.api_url}{path}", params=params, timeout=5)


def test_a_user_without_a_webinar_licence_is_refused_their_webinars_with_code_200(
    zoom_sandbox, zoom_sandbox_session
):
    zoom = zoom_sandbox.state
    member = zoom.add_user(email="no-webinars@sandbox.example", webinar_licence=False)
    licensed = zoom.add_user(email="webinars@sandbox.example")
    zoom.add_webinar(licensed["id"], "Quarterly")

    refused = get(zoom_sandbox, zoom_sandbox_session, f"/users/{member['id']}/webinars")
    allowed = get(zoom_sandbox, zoom_sandbox_session, f"/users/{licensed['id']}/webinars")

    assert (refused.status_code, refused.json()) == (400, NO_LICENCE)
    assert allowed.status_code == 200
    assert [w["topic"] for w in allowed.json()["webinars"]] == ["Quarterly"]
    # the user is there all the same: their meetings list answers
    meetings = get(zoom_sandbox, zoom_sandbox_session, f"/users/{member['id']}/meetings")
    assert meetings.status_code == 200


def test_the_seeded_world_has_users_with_and_without_a_webinar_licence(zoom_sandbox):
    zoom = zoom_sandbox.state

    seed_world(zoom, seed=3, users=5, meetings=20, webinars=12)

    licences = [u["webinar_licence"] for u in zoom.users.values()]
    assert True in licences and False in licences
    # nobody hosts a webinar Zoom would not let them have
    assert all(zoom.users[w["host_id"]]["webinar_licence"] for w in zoom.webinars.values())


def test_the_webinar_list_pages_by_page_number_and_ignores_a_next_page_token(
    zoom_sandbox, zoom_sandbox_session, sandbox_host
):
    zoom = zoom_sandbox.state
    ids = [zoom.add_webinar(sandbox_host["id"], f"Webinar {n}")["id"] for n in range(5)]
    path = f"/users/{sandbox_host['id']}/webinars"

    pages = [
        get(zoom_sandbox, zoom_sandbox_session, path, page_size=2, page_number=n).json()
        for n in (1, 2, 3)
    ]
    with_token = get(
        zoom_sandbox, zoom_sandbox_session, path, page_size=2, next_page_token="from-elsewhere"
    ).json()
    zoom_sandbox.take_contract_violations()  # next_page_token is no parameter of this operation

    assert [[w["id"] for w in p["webinars"]] for p in pages] == [ids[0:2], ids[2:4], ids[4:]]
    assert [(p["page_number"], p["page_count"], p["total_records"]) for p in pages] == [
        (1, 3, 5),
        (2, 3, 5),
        (3, 3, 5),
    ]
    assert all("next_page_token" not in p for p in pages)
    # a token is not how this list pages: the first page again, and still no token
    assert [w["id"] for w in with_token["webinars"]] == ids[0:2]
    assert "next_page_token" not in with_token


def test_the_client_follows_page_number_through_a_users_webinars(zoom_sandbox, sandbox_account):
    from meetings.zoom.client import ZoomClient

    zoom = zoom_sandbox.state
    host = zoom.add_user(email="many-webinars@sandbox.example")
    ids = {zoom.add_webinar(host["id"])["id"] for _ in range(301)}
    since = zoom.request_seq
    client = ZoomClient.for_account(sandbox_account)

    listed = list(client.list_webinars(host["id"]))

    assert {w.id for w in listed} == ids
    asked = [r.path for r in zoom.requests_since(since) if "/webinars" in r.path]
    assert len(asked) == 2
    numbers = [
        r.query.get("page_number") for r in zoom.requests_since(since) if "/webinars" in r.path
    ]
    assert numbers == ["1", "2"]


class FakeClock:
    """A wall clock the test moves: the sandbox's day passes in no time."""

    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at


@pytest.fixture
def free_sandbox():
    """A sandbox of its own on the Free plan, small daily caps and a clock the test holds: one
    hour before midnight UTC."""
    midnight = math.floor(datetime.now(UTC).timestamp() / 86400 + 2) * 86400
    clock = FakeClock(midnight - 3600)
    sandbox = Sandbox(
        plan="free", clock=clock, daily_limits={"free": {"light": 5, "medium": 3, "heavy": 1}}
    )
    sandbox.clock = clock
    sandbox.midnight = midnight
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_a_free_accounts_daily_cap_answers_429_until_the_next_midnight_utc(free_sandbox):
    zoom = free_sandbox.state
    session = s2s_session(free_sandbox)
    owner = zoom.account_owner(DEFAULT_ACCOUNT_ID)

    answers = []
    for _ in range(4):
        free_sandbox.clock.at += 1  # one a second: the per-second limit is not what refuses
        answers.append(get(free_sandbox, session, "/users"))
    light = get(free_sandbox, session, f"/users/{owner['id']}")

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["X-RateLimit-Type"] == "Daily-limit"
    assert refused.headers["X-RateLimit-Category"] == "Medium"
    assert refused.headers["X-RateLimit-Limit"] == "3"
    # Retry-After is an ISO 8601 date-time (NOTES.md): the next 00:00 UTC
    assert refused.headers["Retry-After"] == iso(free_sandbox.midnight)
    assert refused.headers["Retry-After"].endswith("T00:00:00Z")
    assert light.status_code == 200  # the Light label has its own cap
    assert zoom.daily_count(DEFAULT_ACCOUNT_ID, "medium") == 3

    # a new UTC day (and, an hour on, a new token): the cap is whole again
    free_sandbox.clock.at = free_sandbox.midnight + 1
    assert get(free_sandbox, s2s_session(free_sandbox), "/users").status_code == 200


def test_the_daily_caps_are_settings_changed_over_the_control_api(zoom_sandbox):
    zoom = zoom_sandbox.state
    zoom.set_plan("free")
    control = f"{zoom_sandbox.url}/_sandbox/rate_limits"

    set_cap = requests.post(control, json={"label": "medium", "per_day": 2}, timeout=5)
    refused = requests.post(control, json={"label": "medium", "per_day": -1}, timeout=5)

    assert set_cap.status_code == 200
    assert refused.status_code == 400
    assert zoom.rate_limit_for(DEFAULT_ACCOUNT_ID, "medium") == (2, 2)
    assert zoom.rate_limit_for(DEFAULT_ACCOUNT_ID, "light") == (4, 6000)  # the default figure
    zoom.set_plan("pro")
    assert zoom.rate_limit_for(DEFAULT_ACCOUNT_ID, "medium") == (20, None)  # paid: no cap


def test_the_sandbox_command_takes_the_daily_caps_the_dashboard_budgets_with(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from django.conf import settings

    env = dict(os.environ, PYTHONUNBUFFERED="1", ZOOM_DAILY_LIMIT_MEDIUM="700")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "zoom_sandbox", "--port", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while "control API" not in "".join(lines[-1:]):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        url = "".join(lines).split("listening on ")[1].split()[0]
        state = requests.get(f"{url}/_sandbox/state", timeout=5).json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)

    assert state["daily_limits"]["free"] == {"light": 6000, "medium": 700, "heavy": 1000}
