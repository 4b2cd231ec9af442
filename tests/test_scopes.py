"""Scopes as Zoom grants them: classic and granular names both satisfy a need (one table,
meetings/zoom/scopes.py), and a 4711 refusal makes the connection unhealthy and names the scope
to add on the overview, the connection's page and /healthz. Real HTTP to the sandbox."""

import pytest
from django.test import override_settings
from django.urls import reverse

from meetings.models import ZoomAccount
from meetings.zoom import oauth
from meetings.zoom.client import OPERATIONS
from meetings.zoom.errors import ZoomScopeMissing, error_from_response
from meetings.zoom.sandbox import ADMIN_SCOPES, DEFAULT_ACCOUNT_ID, GRANULAR_ADMIN_SCOPES
from meetings.zoom.sandbox.api import ROUTES
from meetings.zoom.scopes import SCOPE_NEEDS

pytestmark = pytest.mark.django_db

MONITORING_TOKEN = "monitoring-token-scopes-0123456789"
WITHOUT_END = tuple(s for s in GRANULAR_ADMIN_SCOPES if s != "meeting:update:status:admin")


def connect(zoom_sandbox, scopes, client_id="scoped-app"):
    """A Server-to-Server app with these scopes in the sandbox, connected as the dashboard's
    admin would (a real token request)."""
    zoom_sandbox.state.add_app(
        client_id, "scoped-secret", DEFAULT_ACCOUNT_ID, kind="server_to_server", scopes=scopes
    )
    account, _ = oauth.connect_server_to_server(
        zoom_account_id=DEFAULT_ACCOUNT_ID,
        client_id=client_id,
        client_secret="scoped-secret",
        name=f"Ops ({client_id})",
    )
    return account


def healthz(client):
    response = client.get(
        reverse("healthz") + "?check=accounts", HTTP_AUTHORIZATION=f"Bearer {MONITORING_TOKEN}"
    )
    return response.status_code, response.json()["checks"]["accounts"]


# --- the one table ---------------------------------------------------------------------------


def test_every_operation_the_client_performs_has_its_scopes_in_the_table():
    assert set(OPERATIONS) <= set(SCOPE_NEEDS)


def test_the_table_names_the_scopes_the_sandbox_asks_for_in_both_schemes():
    # The sandbox plays Zoom from its own list: the table must agree with it, route by route.
    routes = {(r.method, r.template): r for r in ROUTES}
    for operation in OPERATIONS.values():
        route = routes[(operation.method, operation.path)]
        need = SCOPE_NEEDS[operation.operation_id]
        assert f"{route.scope}:admin" == need.classic[0], operation.operation_id
        assert f"{route.granular}:admin" == need.granular[0], operation.operation_id


def test_a_4711_answer_is_a_permanent_scope_error_naming_both_schemes():
    error = error_from_response(
        400,
        {"code": 4711, "message": "Invalid access token, does not contain scopes:[x]."},
        {},
        operation="meetingStatus",
    )

    assert isinstance(error, ZoomScopeMissing) and error.permanent
    text = error.describe()
    assert "end and recover meetings" in text
    assert "meeting:update:status:admin" in text and "meeting:write:admin" in text


# --- against the sandbox ----------------------------------------------------------------------


@override_settings(METRICS_TOKEN=MONITORING_TOKEN)
@pytest.mark.parametrize(
    "scopes", [GRANULAR_ADMIN_SCOPES, ADMIN_SCOPES], ids=["granular", "classic"]
)
def test_granular_or_classic_scopes_give_a_healthy_connection(
    zoom_sandbox, client, admin_user, scopes
):
    host = zoom_sandbox.state.add_user(email="host@sandbox.example")
    meeting = zoom_sandbox.state.add_meeting(host["id"], "Stand-up", status="started")
    account = connect(zoom_sandbox, scopes)

    zoom = oauth.client_for_account(account)
    assert zoom.get_me().account_id == DEFAULT_ACCOUNT_ID
    assert {u.email for u in zoom.list_users()} >= {"host@sandbox.example"}
    assert [m.id for m in zoom.list_meetings(host["id"])] == [meeting["id"]]
    assert zoom.get_meeting(meeting["id"]).status == "started"
    zoom.end_meeting(meeting["id"])

    account.refresh_from_db()
    assert set(account.scopes.split()) == set(scopes)
    assert account.missing_scopes == [] and account.refused_scopes == []
    status, report = healthz(client)
    assert (status, report["ok"], report["connected"]) == (200, True, 1)
    client.force_login(admin_user)
    page = client.get(reverse("connection", args=[account.pk])).content.decode()
    assert "missing" not in page and "refused by Zoom" not in page


@override_settings(METRICS_TOKEN=MONITORING_TOKEN)
def test_a_4711_names_the_missing_scope_on_the_overview_the_connection_page_and_healthz(
    zoom_sandbox, client, admin_user
):
    host = zoom_sandbox.state.add_user(email="host@sandbox.example")
    meeting = zoom_sandbox.state.add_meeting(host["id"], "Town hall", status="started")
    account = connect(zoom_sandbox, WITHOUT_END)
    zoom = oauth.client_for_account(account)
    zoom.get_meeting(meeting["id"])  # reading is granted

    with pytest.raises(ZoomScopeMissing) as refused:
        zoom.end_meeting(meeting["id"])

    assert refused.value.code == 4711
    assert "meeting:update:status" in refused.value.message  # the sandbox's own words
    assert zoom_sandbox.state.meetings[meeting["id"]]["status"] == "started"
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED  # other operations still work
    assert [need.operation_id for need, _ in account.refused_scopes] == ["meetingStatus"]
    assert "meeting:update:status:admin" in account.last_error

    status, report = healthz(client)
    assert (status, report["ok"], report["missing_scope"]) == (503, False, 1)
    listed = report["accounts"][0]
    assert listed["status"] == "missing_scope"
    assert listed["missing_scopes"][0]["cannot"] == "end and recover meetings"
    assert listed["missing_scopes"][0]["add_granular"][0] == "meeting:update:status:admin"
    assert listed["missing_scopes"][0]["add_classic"][0] == "meeting:write:admin"
    public = client.get(reverse("healthz") + "?check=accounts").json()["checks"]["accounts"]
    assert public["missing_scope"] == 1 and "accounts" not in public

    client.force_login(admin_user)
    for url in (reverse("overview"), reverse("connection", args=[account.pk])):
        page = client.get(url).content.decode()
        assert "end and recover meetings" in page, url
        assert "meeting:update:status:admin" in page and "meeting:write:admin" in page, url


def test_a_refusal_ends_when_a_new_token_carries_the_scope(zoom_sandbox, client, admin_user):
    zoom_sandbox.state.end_status_lag = 0  # Zoom's status lag after an end has its own tests
    host = zoom_sandbox.state.add_user(email="host@sandbox.example")
    meeting = zoom_sandbox.state.add_meeting(host["id"], "Town hall", status="started")
    account = connect(zoom_sandbox, WITHOUT_END)
    with pytest.raises(ZoomScopeMissing):
        oauth.client_for_account(account).end_meeting(meeting["id"])

    # The admin adds the scope in the Marketplace; the next token carries it.
    zoom_sandbox.state.apps["scoped-app"].scopes = GRANULAR_ADMIN_SCOPES
    zoom_sandbox.state.expire_access_tokens()
    account.refresh_from_db()
    oauth.client_for_account(account).end_meeting(meeting["id"])

    account.refresh_from_db()
    assert account.refused_scopes == []
    assert zoom_sandbox.state.meetings[meeting["id"]]["status"] != "started"
    client.force_login(admin_user)
    page = client.get(reverse("overview")).content.decode()
    assert "Missing permission" not in page


def test_the_readme_lists_every_scope_in_both_schemes():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for need in SCOPE_NEEDS.values():
        assert f"| `{need.granular[0]}` | `{need.classic[0]}` |" in readme, need.operation_id


@pytest.mark.worker
@override_settings(METRICS_TOKEN=MONITORING_TOKEN)
def test_an_end_refused_for_want_of_a_scope_fails_once_and_says_which_scope_to_add(
    celery_worker_process, zoom_sandbox, client
):
    from meetings.actions import request_action
    from meetings.models import Action
    from meetings.models.actions import TERMINAL_STATES
    from tests.waiting import wait_until

    host = zoom_sandbox.state.add_user(email="host@sandbox.example")
    meeting = zoom_sandbox.state.add_meeting(host["id"], "Town hall", status="started")
    account = connect(zoom_sandbox, WITHOUT_END)

    action, _ = request_action(
        account=account, kind="end_meeting", source="dashboard", target_id=meeting["id"]
    )
    wait_until(
        lambda: Action.objects.filter(pk=action.pk, state__in=TERMINAL_STATES).exists(),
        60,
        "the end to finish",
    )

    action.refresh_from_db()
    assert (action.state, action.zoom_code, action.attempts.count()) == ("failed", 4711, 1)
    assert "meeting:update:status:admin" in action.result_summary
    assert "meeting:write:admin" in action.result_summary
    status, report = healthz(client)
    assert (status, report["missing_scope"]) == (503, 1)
