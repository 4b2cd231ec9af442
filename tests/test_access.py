"""Roles per Zoom connection (meetings/access.py) and the access audit in the admin (issue 15).

The URL-by-URL matrix of who may see and do what on which connection is in
tests/test_authz_matrix.py; here are the rules themselves, the admin that gives connection roles
and records them, the read-only access audit with its CSV, and what viewers no longer see.
"""

import csv
import io
import os
import pwd
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from meetings import access
from meetings.management.commands.zoomctl import system_user
from meetings.models import (
    AccessEvent,
    Action,
    ActionKind,
    ActionSource,
    ActionState,
    ConnectionGrant,
    Meeting,
    MeetingStatus,
    Role,
    ZoomAccount,
    record_access,
)
from meetings.models.mirror import STREAM_KEY_MASK
from meetings.roles import OPERATORS, VIEWERS


def account(name):
    return ZoomAccount.objects.create(
        name=name,
        kind=ZoomAccount.Kind.SERVER_TO_SERVER,
        zoom_account_id=name.lower(),
        client_id=f"{name.lower()}-client",
    )


def fresh(user):
    """The user as the next request loads it (answers are cached on the user object)."""
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def sales(db):
    return account("Sales")


@pytest.fixture
def support(db):
    return account("Support")


def grant(user, on, role):
    return ConnectionGrant.objects.create(user=user, account=on, role=role)


# --- the rules -------------------------------------------------------------------------------


def test_a_role_is_the_higher_of_the_global_one_and_the_connections(
    viewer, operator, admin_user, outsider, sales, support
):
    grant(viewer, sales, Role.OPERATOR)
    grant(operator, sales, Role.VIEWER)
    grant(outsider, sales, Role.ADMIN)

    assert access.role_on(fresh(viewer), sales) == Role.OPERATOR
    assert access.role_on(fresh(viewer), support) == Role.VIEWER
    assert access.role_on(fresh(operator), sales) == Role.OPERATOR  # a lower grant takes nothing
    assert access.role_on(fresh(admin_user), support) == Role.ADMIN
    assert access.role_on(fresh(outsider), sales) == Role.ADMIN
    assert access.role_on(fresh(outsider), support) is None


def test_without_a_global_role_only_granted_connections_are_seen(outsider, viewer, sales, support):
    assert not access.can_view_dashboard(outsider)
    assert list(access.visible_accounts(outsider)) == []

    grant(outsider, sales, Role.VIEWER)
    outsider = fresh(outsider)
    assert access.can_view_dashboard(outsider)
    assert list(access.visible_accounts(outsider)) == [sales]
    Meeting.objects.create(account=sales, zoom_id=81000000001, topic="S")
    Meeting.objects.create(account=support, zoom_id=81000000002, topic="T")
    assert [m.topic for m in access.visible_meetings(outsider)] == ["S"]
    # A global viewer sees every connection, without a grant.
    assert set(access.visible_accounts(viewer)) == {sales, support}
    assert access.visible_meetings(viewer).count() == 2


def test_an_operator_role_gives_the_operators_groups_actions_on_that_connection_only(
    viewer, outsider, sales, support
):
    grant(viewer, sales, Role.OPERATOR)
    grant(outsider, sales, Role.VIEWER)
    viewer, outsider = fresh(viewer), fresh(outsider)

    for kind in ActionKind:
        assert access.can_act(viewer, sales, kind), kind
        assert not access.can_act(viewer, support, kind), kind
        assert not access.can_act(outsider, sales, kind), kind
    assert access.kinds_anywhere(outsider) == frozenset()

    # What the operators group may do is what an operator role gives: a supervisor who takes
    # ends away from the group takes them from connection operators too.
    group = Group.objects.get(name=OPERATORS)
    group.permissions.remove(*group.permissions.filter(codename="end_meeting"))
    viewer = fresh(viewer)
    assert not access.can_act(viewer, sales, ActionKind.END_MEETING)
    assert access.can_act(viewer, sales, ActionKind.STOP_LIVESTREAM)


def test_an_admin_role_on_a_connection_acts_there_on_everything(outsider, sales, support):
    grant(outsider, sales, Role.ADMIN)
    outsider = fresh(outsider)
    assert access.allowed_kinds(outsider, sales) == frozenset(ActionKind)
    assert access.allowed_kinds(outsider, support) == frozenset()
    # Managing connections stays with global admins.
    from meetings.views.connections import can_manage_connections

    assert not can_manage_connections(outsider)


def test_an_inactive_user_sees_and_does_nothing(outsider, sales):
    grant(outsider, sales, Role.ADMIN)
    outsider.is_active = False
    outsider.save()
    outsider = fresh(outsider)
    assert not access.can_view_dashboard(outsider)
    assert not access.can_act(outsider, sales, ActionKind.END_MEETING)


def test_the_roles_groups_do_not_get_the_access_audit(db):
    for name in (VIEWERS, OPERATORS):
        codenames = set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        assert "view_meeting" in codenames
        assert "view_accessevent" not in codenames
        assert "view_connectiongrant" not in codenames
        assert "see_client_addresses" not in codenames


# --- the admin: connection roles, recorded ------------------------------------------------------


class _FormReader(HTMLParser):
    """The fields of a page's form as a browser would post them (what the admin's change page
    holds, inline formsets included)."""

    def __init__(self, form_id):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, []
        self._select, self._textarea = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            default = "on" if kind in ("checkbox", "radio") else ""
            self.data.append((a["name"], a.get("value", default)))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.data.append((a["name"], ""))

    def handle_data(self, data):
        if self._textarea:
            name, value = self.data.pop()
            self.data.append((name, value + data.lstrip("\n")))

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_data(html, form_id):
    reader = _FormReader(form_id)
    reader.feed(html)
    data = {}
    for name, value in reader.data:
        data.setdefault(name, []).append(value)
    return data


def test_an_admin_grants_changes_and_removes_a_connection_role_and_each_is_recorded(
    client, admin_user, outsider, sales
):
    client.force_login(admin_user)
    url = reverse("admin:meetings_zoomaccount_change", args=[sales.pk])

    # granted
    data = form_data(client.get(url).content.decode(), "zoomaccount_form")
    data.update({"grants-TOTAL_FORMS": ["1"], "grants-0-user": [str(outsider.pk)]})
    data["grants-0-role"] = ["operator"]
    answer = client.post(url, data, REMOTE_ADDR="203.0.113.9")
    assert answer.status_code == 302
    held = ConnectionGrant.objects.get(user=outsider, account=sales)
    assert (held.role, held.source, held.granted_by) == ("operator", "admin", admin_user)

    # changed (on the user's page)
    user_url = reverse("admin:auth_user_change", args=[outsider.pk])
    data = form_data(client.get(user_url).content.decode(), "user_form")
    assert data["connection_grants-0-role"] == ["operator"]
    data["connection_grants-0-role"] = ["viewer"]
    assert client.post(user_url, data).status_code == 302
    assert ConnectionGrant.objects.get(user=outsider).role == "viewer"

    # removed
    data = form_data(client.get(url).content.decode(), "zoomaccount_form")
    data["grants-0-DELETE"] = ["on"]
    assert client.post(url, data).status_code == 302
    assert not ConnectionGrant.objects.exists()

    events = list(AccessEvent.objects.order_by("at", "pk"))
    assert [
        (e.kind, e.detail["change"], e.detail["role"], e.detail["previous"]) for e in events
    ] == [
        ("connection_granted", "granted", "operator", None),
        ("connection_granted", "changed", "viewer", "operator"),
        ("connection_granted", "removed", None, "viewer"),
    ]
    assert {(e.user, e.actor, e.detail["account"]) for e in events} == {
        (outsider, admin_user, "Sales")
    }
    assert events[0].client_ip == "203.0.113.9"


def test_deleting_a_user_in_the_admin_records_the_roles_they_lose(
    client, admin_user, outsider, sales, support
):
    grant(outsider, sales, Role.OPERATOR)
    grant(outsider, support, Role.VIEWER)
    client.force_login(admin_user)

    url = reverse("admin:auth_user_delete", args=[outsider.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302

    assert not ConnectionGrant.objects.exists()
    removed = AccessEvent.objects.filter(kind="connection_granted").order_by("detail__account")
    assert [(e.username, e.actor, e.detail["account"], e.detail["previous"]) for e in removed] == [
        ("otto-outsider", admin_user, "Sales", "operator"),
        ("otto-outsider", admin_user, "Support", "viewer"),
    ]


def test_joining_or_leaving_the_zoom_groups_in_the_admin_is_recorded(client, admin_user, outsider):
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[outsider.pk])
    operators = Group.objects.get(name=OPERATORS)

    data = form_data(client.get(url).content.decode(), "user_form")
    data["groups"] = [str(operators.pk)]
    assert client.post(url, data).status_code == 302
    data = form_data(client.get(url).content.decode(), "user_form")
    data["groups"] = []
    data["is_superuser"] = ["on"]
    assert client.post(url, data).status_code == 302
    # Saving without a change records nothing.
    assert (
        client.post(url, form_data(client.get(url).content.decode(), "user_form")).status_code
        == 302
    )

    events = list(AccessEvent.objects.filter(kind="role_changed").order_by("at", "pk"))
    assert [e.detail for e in events] == [
        {"groups_added": [OPERATORS], "groups_removed": []},
        {"groups_added": [], "groups_removed": [OPERATORS], "superuser": True},
    ]
    assert all((e.user, e.actor) == (outsider, admin_user) for e in events)


# --- the access audit: read-only, filtered, exported -------------------------------------------


@pytest.fixture
def audit(db, operator):
    record_access(
        AccessEvent.Kind.SIGN_IN_FAILED, username="mallory", client_ip="192.0.2.66", success=False
    )
    record_access(AccessEvent.Kind.SIGNED_IN, user=operator, client_ip="198.51.100.20")


def test_the_access_audit_is_for_those_allowed_to_read_it(client, audit, viewer, operator):
    from django.contrib.auth.models import Permission

    url = reverse("admin:meetings_accessevent_changelist")
    for user in (viewer, operator):
        user.is_staff = True
        user.save()
        client.force_login(user)
        assert client.get(url).status_code == 403
        assert client.get(reverse("admin:meetings_accessevent_export")).status_code == 403

    # A supervisor given the permission reads it.
    viewer.user_permissions.add(Permission.objects.get(codename="view_accessevent"))
    client.force_login(viewer)
    html = client.get(url).content.decode()
    assert "mallory" in html and "192.0.2.66" in html


def test_the_access_audit_is_read_only_with_filters_search_and_csv(client, audit, admin_user):
    client.force_login(admin_user)
    url = reverse("admin:meetings_accessevent_changelist")
    event = AccessEvent.objects.get(username="mallory")

    assert client.get(reverse("admin:meetings_accessevent_add")).status_code == 403
    change = client.get(reverse("admin:meetings_accessevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert "mallory" in change.content.decode()
    assert 'name="_save"' not in change.content.decode()
    delete = client.get(reverse("admin:meetings_accessevent_delete", args=[event.pk]))
    assert delete.status_code == 403
    assert (
        client.post(reverse("admin:meetings_accessevent_change", args=[event.pk]), {}).status_code
        == 403
    )
    assert AccessEvent.objects.count() == 2

    failed = client.get(url, {"success__exact": "0"}).content.decode()
    assert "mallory" in failed and "oscar-operator" not in failed
    by_kind = client.get(url, {"kind__exact": "signed_in"}).content.decode()
    assert "oscar-operator" in by_kind and "mallory" not in by_kind
    by_address = client.get(url, {"q": "192.0.2.66"}).content.decode()
    assert "mallory" in by_address and "oscar-operator" not in by_address
    by_date = client.get(url, {"at__year": "2000"}).content.decode()
    assert "mallory" not in by_date

    export = client.get(reverse("admin:meetings_accessevent_export"), {"q": "mallory"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0] == ["id", "at", "kind", "success", "username", "actor", "client_ip", "detail"]
    assert [(r[2], r[3], r[4], r[6]) for r in rows[1:]] == [
        ("sign_in_failed", "no", "mallory", "192.0.2.66")
    ]
    assert export["Content-Disposition"] == 'attachment; filename="zoom-access-audit.csv"'


# --- what viewers no longer see ------------------------------------------------------------------


def make_action(on, **fields):
    return Action.objects.create(
        account=on,
        kind=ActionKind.END_MEETING,
        source=ActionSource.DASHBOARD,
        state=ActionState.SUCCEEDED,
        target_type="meeting",
        target_id=81000000009,
        topic="Board meeting",
        client_ip="198.51.100.44",
        **fields,
    )


def test_client_addresses_are_for_admins_and_who_they_allow(client, sales, viewer, admin_user):
    from django.contrib.auth.models import Permission

    action = make_action(sales)
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    for url in (
        reverse("action", args=[action.pk]),
        reverse("admin:meetings_action_change", args=[action.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200 and "198.51.100.44" not in page.content.decode(), url
    export = b"".join(client.get(reverse("admin:meetings_action_export")).streaming_content)
    assert b"198.51.100.44" not in export and b"Board meeting" in export

    viewer.user_permissions.add(Permission.objects.get(codename="see_client_addresses"))
    for user in (fresh(viewer), admin_user):
        client.force_login(user)
        assert "198.51.100.44" in client.get(reverse("action", args=[action.pk])).content.decode()
        admin_page = client.get(reverse("admin:meetings_action_change", args=[action.pk]))
        assert "198.51.100.44" in admin_page.content.decode()
        export = b"".join(client.get(reverse("admin:meetings_action_export")).streaming_content)
        assert b"198.51.100.44" in export


def test_a_masked_stream_key_shows_nothing_of_the_key(client, sales, viewer, admin_user):
    key = "live_8812345_Zq9XwE"
    short = "ab1"
    meeting = Meeting.objects.create(
        account=sales,
        zoom_id=81000000010,
        topic="Streamed",
        status=MeetingStatus.STARTED,
        stream_url="rtmp://x.example/app",
        page_url="https://x.example",
        stream_key=key,
    )
    other = Meeting.objects.create(account=sales, zoom_id=81000000011, stream_key=short)
    # The same dots whatever the key: neither its last characters nor its length.
    assert meeting.masked_stream_key == other.masked_stream_key == STREAM_KEY_MASK
    assert not set(key) & set(STREAM_KEY_MASK)

    client.force_login(viewer)
    page = client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert STREAM_KEY_MASK in page and key[-4:] not in page and key[-2:] + "<" not in page
    client.force_login(admin_user)
    admin_page = client.get(reverse("admin:meetings_meeting_change", args=[meeting.pk]))
    html = admin_page.content.decode()
    assert STREAM_KEY_MASK in html and key[-4:] not in html


# --- zoomctl: who ran it on the server ---------------------------------------------------------


def test_the_server_user_is_the_processs_own_and_names_who_used_sudo(monkeypatch):
    me = pwd.getpwuid(os.getuid()).pw_name
    monkeypatch.setenv("USER", "someone-else")  # anyone can set $USER; the uid is the truth
    monkeypatch.delenv("SUDO_USER", raising=False)
    assert system_user() == me
    monkeypatch.setenv("SUDO_USER", "alice")
    assert system_user() == f"{me} (sudo by alice)"


def test_the_server_user_of_a_zoomctl_action_is_shown_on_its_page_timeline_and_admin(
    client, sales, operator
):
    action = make_action(sales, requested_by=operator, os_user="deploy (sudo by alice)")
    Action.objects.filter(pk=action.pk).update(source=ActionSource.COMMAND_LINE)
    meeting = Meeting.objects.create(account=sales, zoom_id=action.target_id, topic="Board meeting")
    client.force_login(operator)
    assert (
        "deploy (sudo by alice)" in client.get(reverse("action", args=[action.pk])).content.decode()
    )
    timeline = client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "server user deploy (sudo by alice)" in timeline
    operator.is_staff = True
    operator.save()
    admin_page = client.get(reverse("admin:meetings_action_change", args=[action.pk]))
    assert "deploy (sudo by alice)" in admin_page.content.decode()
    admin_list = client.get(reverse("admin:meetings_action_changelist")).content.decode()
    assert "oscar-operator (server user deploy (sudo by alice))" in admin_list
    export = b"".join(client.get(reverse("admin:meetings_action_export")).streaming_content)
    assert b"deploy (sudo by alice)" in export
