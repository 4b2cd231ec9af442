"""The sandbox's listings as strict as Zoom's (issue 11), over real HTTP: scheduled meetings only
in a user's list, `type=live` empty on Pro, and the Dashboard's live meetings on Business."""

from datetime import UTC, datetime, timedelta

import pytest
import requests

from meetings.zoom.sandbox import DEFAULT_ACCOUNT_ID, Sandbox, seed
from meetings.zoom.sandbox.state import RATE_LIMITS

from .test_sandbox import api, control, s2s_token

LIST_TYPES = ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings")


@pytest.fixture
def token(zoom_sandbox):
    return s2s_token(zoom_sandbox)


@pytest.fixture
def owner(zoom_sandbox):
    return zoom_sandbox.state.account_owner(DEFAULT_ACCOUNT_ID)


def listed(sandbox, token, user_id, kind):
    answer = api(sandbox, "GET", f"/users/{user_id}/meetings", token, params={"type": kind})
    assert answer.status_code == 200, answer.text
    return {m["id"] for m in answer.json()["meetings"]}


def dashboard(sandbox, token, **params):
    today = datetime.now(UTC).date()
    query = {"type": "live", "from": str(today - timedelta(days=2)), "to": str(today), **params}
    return api(sandbox, "GET", "/metrics/meetings", token, params=query)


def test_instant_and_pmi_meetings_are_in_no_list_whatever_type_asks(zoom_sandbox, token, owner):
    # given a Business account (whose `live` list works) with an instant meeting live, a
    # personal meeting room live and one waiting, and scheduled meetings live and not
    state = zoom_sandbox.state
    state.set_plan("business")
    instant = state.add_meeting(owner["id"], "Quick call", type=1, status="started")
    room = state.add_meeting(owner["id"], "Room", type=4, meeting_id=owner["pmi"], status="started")
    other = state.add_user(email="pmi@sandbox.example")
    idle_room = state.add_meeting(other["id"], "Idle room", type=4, meeting_id=other["pmi"])
    live = state.add_meeting(owner["id"], "Live scheduled", status="started")
    recurring = state.add_meeting(owner["id"], "Weekly", type=8, start_time=state.now() - 60)
    unlisted = {instant["id"], room["id"], idle_room["id"]}

    # when every list type is asked for, for both users
    seen = {
        kind: listed(zoom_sandbox, token, owner["id"], kind)
        | listed(zoom_sandbox, token, other["id"], kind)
        for kind in LIST_TYPES
    }

    # then no list names the instant or PMI meetings; the scheduled ones are where they belong
    assert all(not (ids & unlisted) for ids in seen.values()), seen
    assert seen["live"] == {live["id"]}
    assert seen["scheduled"] == {live["id"], recurring["id"]}
    assert recurring["id"] in seen["previous_meetings"]
    # and GET /meetings/{id} answers each of them, with its type and status
    for meeting, status in ((instant, "started"), (room, "started"), (idle_room, "waiting")):
        answer = api(zoom_sandbox, "GET", f"/meetings/{meeting['id']}", token).json()
        assert (answer["type"], answer["status"]) == (meeting["type"], status)


def test_instant_and_pmi_meetings_send_their_events(zoom_sandbox, owner):
    state = zoom_sandbox.state
    room = state.add_meeting(owner["id"], "Room", type=4, meeting_id=owner["pmi"])
    instant = state.add_meeting(owner["id"], "Quick call", type=1, status="started", emit=True)

    state.start_meeting(room["id"])
    state.end_meeting(instant["id"])
    state.end_meeting(room["id"])

    assert state.counters["event:meeting.started"] == 2
    assert state.counters["event:meeting.ended"] == 2
    # an instant meeting that ended is gone; a personal room waits for its next use
    assert (instant["status"], room["status"]) == ("ended", "waiting")


@pytest.mark.parametrize(("plan", "lists_live"), [("pro", False), ("business", True)])
def test_the_live_list_is_empty_on_pro_and_lists_live_meetings_on_business(
    zoom_sandbox, token, owner, plan, lists_live
):
    # zoom/api#76: on Pro `type=live` answers an empty list, not an error.
    state = zoom_sandbox.state
    state.set_plan(plan)
    live = state.add_meeting(owner["id"], "Live", status="started")
    state.add_meeting(owner["id"], "Later")

    answer = api(zoom_sandbox, "GET", "/users/me/meetings", token, params={"type": "live"})

    assert answer.status_code == 200
    body = answer.json()
    assert {m["id"] for m in body["meetings"]} == ({live["id"]} if lists_live else set())
    assert body["total_records"] == (1 if lists_live else 0)


def test_the_default_plan_is_pro_and_the_control_api_switches_it(zoom_sandbox, token, owner):
    zoom_sandbox.state.add_meeting(owner["id"], "Live", status="started")
    assert zoom_sandbox.state.accounts[DEFAULT_ACCOUNT_ID]["plan"] == "pro"
    assert listed(zoom_sandbox, token, "me", "live") == set()

    switched = control(zoom_sandbox, "POST", "/plan", json={"plan": "business"})

    assert switched.json() == {"account_id": DEFAULT_ACCOUNT_ID, "plan": "business"}
    assert len(listed(zoom_sandbox, token, "me", "live")) == 1
    assert control(zoom_sandbox, "POST", "/plan", json={"plan": "gold"}).status_code == 400
    assert Sandbox(plan="business").state.accounts[DEFAULT_ACCOUNT_ID]["plan"] == "business"


def test_the_dashboard_lists_every_live_meeting_of_a_business_account_page_by_page(
    zoom_sandbox, token, owner
):
    # given a Business account with live meetings of every type, across two hosts
    state = zoom_sandbox.state
    state.set_plan("business")
    other = state.add_user(email="second.host@sandbox.example", first_name="Sol")
    live = {
        state.add_meeting(owner["id"], "Quick call", type=1, status="started")["id"],
        state.add_meeting(owner["id"], "Room", type=4, meeting_id=owner["pmi"], status="started")[
            "id"
        ],
        state.add_meeting(other["id"], "Recurring", type=8, status="started")["id"],
        *(state.add_meeting(other["id"], f"Live {n}", status="started")["id"] for n in range(4)),
    }
    state.add_meeting(other["id"], "Not live")

    # when the Dashboard's live meetings are read three at a time
    seen, token_, pages = [], "", 0
    while True:
        params = {"page_size": 3, **({"next_page_token": token_} if token_ else {})}
        answer = dashboard(zoom_sandbox, token, **params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages += 1
        assert body["total_records"] == 7
        seen += body["meetings"]
        token_ = body["next_page_token"]
        if not token_:
            break

    # then every live meeting is there once, with its host's email and instance
    assert pages == 3
    assert {m["id"] for m in seen} == live and len(seen) == 7
    room = next(m for m in seen if m["id"] == owner["pmi"])
    assert room["email"] == owner["email"]
    assert room["uuid"] == state.meetings[owner["pmi"]]["uuid"]


def test_the_dashboard_refuses_a_pro_account_with_code_200(zoom_sandbox, token, owner):
    zoom_sandbox.state.add_meeting(owner["id"], "Live", status="started")

    answer = dashboard(zoom_sandbox, token)

    assert answer.status_code == 400
    assert answer.json()["code"] == 200
    assert "Business" in answer.json()["message"]


def test_the_dashboard_needs_its_admin_scope_and_a_date_range(zoom_sandbox, token):
    state = zoom_sandbox.state
    state.set_plan("business")
    state.add_app("no-dashboard", "secret", kind="server_to_server", scopes=("meeting:read:admin",))

    no_scope = dashboard(zoom_sandbox, s2s_token(zoom_sandbox, auth=("no-dashboard", "secret")))
    no_dates = api(zoom_sandbox, "GET", "/metrics/meetings", token, params={"type": "live"})
    too_long = dashboard(zoom_sandbox, token, **{"from": "2020-01-01"})

    assert (no_scope.status_code, no_scope.json()["code"]) == (400, 4711)
    assert "dashboard_meetings:read:admin" in no_scope.json()["message"]
    assert (no_dates.status_code, no_dates.json()["code"]) == (400, 300)
    assert (too_long.status_code, too_long.json()["code"]) == (400, 300)
    # the request without `from` and `to` breaks the spec's contract: the checker saw it
    problems = zoom_sandbox.take_contract_violations()
    assert any(v["kind"] == "request" and "/metrics/meetings" in v["path"] for v in problems)


def test_the_dashboard_is_rate_limited_per_minute_as_resource_intensive(zoom_sandbox, token):
    state = zoom_sandbox.state
    state.set_plan("business")
    per_minute, _ = RATE_LIMITS["business"]["resource"]

    answers = [dashboard(zoom_sandbox, token) for _ in range(per_minute + 1)]

    assert [a.status_code for a in answers[:-1]] == [200] * per_minute
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Category"] == "Resource-intensive"
    # the window is a minute: a second later is not enough, a minute later is
    state.advance_clock(1.5)
    assert dashboard(zoom_sandbox, token).status_code == 429
    state.advance_clock(60)
    assert dashboard(zoom_sandbox, token).status_code == 200


def test_every_seeded_world_has_live_instant_and_pmi_meetings(zoom_sandbox):
    state = zoom_sandbox.state
    summary = seed.seed_world(state, seed=3, users=4, meetings=40, webinars=2)

    unlisted = [m for m in state.meetings.values() if m["type"] in (1, 4)]
    assert summary["unlisted_meetings"] == seed.PMI_ROOMS + seed.LIVE_INSTANT
    assert sum(m["type"] == 4 and m["status"] == "started" for m in unlisted) >= 2
    assert sum(m["type"] == 1 and m["status"] == "started" for m in unlisted) >= 2
    assert any(m["type"] == 4 and m["status"] == "waiting" for m in unlisted)
    # each room is its host's personal meeting ID
    for room in (m for m in unlisted if m["type"] == 4):
        assert room["id"] == state.users[room["host_id"]]["pmi"]


def test_the_control_api_plan_endpoint_needs_a_known_account(zoom_sandbox):
    answer = requests.post(
        f"{zoom_sandbox.url}/_sandbox/plan",
        json={"plan": "business", "account_id": "nobody"},
        timeout=5,
    )
    assert answer.status_code == 404
