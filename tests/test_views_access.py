"""Who sees which page and who may act, enforced in the views (not only hidden in templates)."""

import pytest
from django.urls import reverse

from meetings.models import Action, Batch

from .dashboard_data import make_account, make_action, make_meeting, make_past, make_webinar

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    account = make_account()
    meeting = make_meeting(account, status="started", topic="Town hall")
    webinar = make_webinar(account, status="started")
    past = make_past(account, meeting)
    action = make_action(account, target=meeting, state="failed", result_summary="Zoom: nope")
    batch = Batch.objects.create(kind="end_meeting", account=account, total=0)
    return {
        "account": account,
        "meeting": meeting,
        "webinar": webinar,
        "past": past,
        "action": action,
        "batch": batch,
    }


def pages(world):
    return [
        reverse("overview"),
        reverse("meetings"),
        reverse("meeting-badges") + f"?id={world['meeting'].pk}",
        reverse("meeting", args=[world["meeting"].pk]),
        reverse("webinars"),
        reverse("webinar", args=[world["webinar"].pk]),
        reverse("past-meetings"),
        reverse("past-meeting", args=[world["past"].pk]),
        reverse("activity"),
        reverse("action", args=[world["action"].pk]),
        reverse("bulk", args=[world["batch"].pk]),
    ]


def action_posts(world):
    """(url, data, kind) for every action a POST can request."""
    m, w, a = world["meeting"], world["webinar"], world["account"]
    return [
        (reverse("meeting-end", args=[m.pk]), {}, "end_meeting"),
        (
            reverse("meeting-stream-update", args=[m.pk]),
            {
                "stream_url": "rtmp://live.example.com/app",
                "stream_key": "secret-key-123",
                "page_url": "https://example.com/watch",
                "resolution": "720p",
            },
            "update_livestream",
        ),
        (reverse("meeting-fetch-past", args=[m.pk]), {}, "fetch_past_meeting"),
        (reverse("webinar-end", args=[w.pk]), {}, "end_webinar"),
        (reverse("account-sync", args=[a.pk]), {}, "sync"),
    ]


def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, world):
    for url in pages(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_anonymous_action_posts_are_sent_to_sign_in_and_make_no_job(client, world):
    for url, data, _ in action_posts(world):
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
    assert Action.objects.count() == 1  # the fixture's


def test_a_user_in_no_group_gets_the_no_access_page_everywhere(client, outsider, world):
    client.force_login(outsider)
    for url in pages(world):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"You have no access to zoomadmin yet" in response.content, url


@pytest.mark.parametrize("role", ["viewer", "operator", "admin_user"])
def test_every_page_opens_for_viewers_operators_and_admins(client, world, role, request):
    client.force_login(request.getfixturevalue(role))
    for url in pages(world):
        response = client.get(url)
        assert response.status_code == 200, url


def test_viewer_gets_403_on_every_action_post_and_no_job_is_made(client, viewer, world):
    client.force_login(viewer)
    for url, data, _ in action_posts(world):
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert b"You are not allowed to do that" in response.content
    assert Action.objects.count() == 1


def test_viewer_gets_403_on_confirmation_pages_bulk_and_stream_controls(client, viewer, world):
    client.force_login(viewer)
    m = world["meeting"]
    for url in (
        reverse("meeting-end", args=[m.pk]),
        reverse("meeting-recover", args=[m.pk]),
        reverse("meeting-stream-stop", args=[m.pk]),
        reverse("bulk-preview") + f"?kind=end_meeting&ids={m.pk}",
    ):
        assert client.get(url).status_code == 403, url
    for url in (
        reverse("meeting-stream-start", args=[m.pk]),
        reverse("meeting-stream-stop", args=[m.pk]),
        reverse("bulk-run"),
        reverse("bulk-cancel", args=[world["batch"].pk]),
    ):
        response = client.post(url, {"kind": "end_meeting", "ids": [m.pk]})
        assert response.status_code == 403, url
    assert Action.objects.count() == 1


def test_viewer_sees_no_action_controls(client, viewer, world):
    client.force_login(viewer)
    page = client.get(reverse("meeting", args=[world["meeting"].pk])).content.decode()
    assert "End meeting…" not in page
    assert "data-confirm" not in page
    assert "<dialog" not in page
    assert "Save settings" not in page
    assert "Start live stream" not in page
    assert "Fetch details" not in page
    listing = client.get(reverse("meetings")).content.decode()
    assert 'name="ids"' not in listing
    assert "Review…" not in listing
    webinar = client.get(reverse("webinar", args=[world["webinar"].pk])).content.decode()
    assert "End webinar…" not in webinar
    overview = client.get(reverse("overview")).content.decode()
    assert "Sync now" not in overview


@pytest.mark.parametrize("role", ["operator", "admin_user"])
def test_operators_and_admins_can_request_every_action(client, world, role, request):
    user = request.getfixturevalue(role)
    client.force_login(user)
    for url, data, kind in action_posts(world):
        response = client.post(url, data, REMOTE_ADDR="203.0.113.7")
        assert response.status_code == 302, (url, response.content[:500])
        action = Action.objects.filter(kind=kind).latest("id")
        assert action.requested_by == user
        assert action.source == "dashboard"
        assert action.client_ip == "203.0.113.7"
        assert action.state == "queued"


def test_operator_sees_the_controls_a_viewer_does_not(client, operator, world):
    client.force_login(operator)
    page = client.get(reverse("meeting", args=[world["meeting"].pk])).content.decode()
    assert "End meeting…" in page
    assert 'id="confirm-end"' in page
    assert "Save settings" in page


def test_a_user_allowed_only_live_streams_cannot_end_meetings(client, django_user_model, world):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("stream-only", password="x" * 20)
    user.user_permissions.add(
        Permission.objects.get(codename="view_meeting"),
        Permission.objects.get(codename="manage_livestream"),
    )
    client.force_login(user)
    m = world["meeting"]
    page = client.get(reverse("meeting", args=[m.pk])).content.decode()
    assert "End meeting…" not in page
    assert "Save settings" in page
    assert client.post(reverse("meeting-end", args=[m.pk])).status_code == 403
    response = client.post(
        reverse("meeting-stream-update", args=[m.pk]),
        {
            "stream_url": "rtmps://live.example.com/app",
            "stream_key": "k" * 10,
            "page_url": "https://example.com/live",
        },
    )
    assert response.status_code == 302
    assert Action.objects.filter(kind="update_livestream", requested_by=user).count() == 1
    assert not Action.objects.filter(kind="end_meeting", requested_by=user).exists()


def test_connections_link_is_shown_to_admins_only(client, admin_user, operator, world):
    client.force_login(operator)
    assert ">Connections<" not in client.get(reverse("overview")).content.decode()
    client.force_login(admin_user)
    assert ">Connections<" in client.get(reverse("overview")).content.decode()


def test_reconnect_banner_shows_on_every_page_when_an_account_needs_it(client, viewer, world):
    account = world["account"]
    account.status = "needs_reconnect"
    account.save(update_fields=["status"])
    client.force_login(viewer)
    for url in pages(world)[:2]:
        page = client.get(url).content.decode()
        assert "needs to be reconnected" in page
        assert "Acme Zoom" in page


def test_an_expired_session_sends_htmx_polls_to_sign_in_as_a_whole_page(client, world):
    page = reverse("meeting", args=[world["meeting"].pk])
    response = client.get(
        reverse("action", args=[world["action"].pk]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}?x=1",
    )
    # Not a redirect the XHR would follow (that would paste the sign-in form into the panel).
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next={page}%3Fx%3D1"
    assert response.content == b""
