"""The Connections screen: admins only, every refusal a clear page, nothing stored on bad input."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from meetings.models import ZoomAccount
from meetings.views.connections import SESSION_KEY

OAUTH_BASE = "http://zoom.invalid"


@pytest.fixture(autouse=True)
def oauth_app(settings):
    settings.ZOOM_OAUTH_BASE_URL = OAUTH_BASE
    settings.ZOOM_CLIENT_ID = "dashboard-client"
    settings.ZOOM_CLIENT_SECRET = "dashboard-client-secret"


@pytest.fixture
def connections_admin(django_user_model, password):
    """Not a superuser: an ordinary user given meetings.manage_connections."""
    user = django_user_model.objects.create_user("carla-connections", password=password)
    user.user_permissions.add(Permission.objects.get(codename="manage_connections"))
    return user


@pytest.fixture
def account(db):
    return ZoomAccount.objects.create(
        name="Acme",
        kind=ZoomAccount.Kind.OAUTH,
        zoom_account_id="acct-1",
        client_id="dashboard-client",
        client_secret="dashboard-client-secret",
        access_token="stored-access-token-000",
        refresh_token="stored-refresh-token-000",
    )


def pages(account):
    return [
        ("get", reverse("connections")),
        ("get", reverse("connection", args=[account.pk])),
        ("get", reverse("connection-connect")),
        ("post", reverse("connection-connect")),
        ("get", reverse("connection-callback") + "?state=x&code=y"),
        ("post", reverse("connection-test", args=[account.pk])),
        ("get", reverse("connection-disconnect", args=[account.pk])),
        ("post", reverse("connection-disconnect", args=[account.pk])),
        ("get", reverse("connection-reconnect", args=[account.pk])),
        ("post", reverse("connection-reconnect", args=[account.pk])),
    ]


@pytest.mark.parametrize("role", ["viewer", "operator", "outsider"])
def test_only_admins_may_see_or_touch_connections(client, request, role, account):
    client.force_login(request.getfixturevalue(role))
    for method, url in pages(account):
        response = getattr(client, method)(url)
        assert response.status_code == 403, (method, url)
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED
    assert account.access_token == "stored-access-token-000"


def test_signed_out_visitors_are_sent_to_sign_in(client, account):
    for method, url in pages(account):
        response = getattr(client, method)(url)
        assert response.status_code == 302
        assert reverse("login") in response["Location"]


def test_a_user_with_manage_connections_sees_the_connections(client, connections_admin, account):
    client.force_login(connections_admin)
    response = client.get(reverse("connections"))
    assert response.status_code == 200
    assert "Acme" in response.text
    assert "stored-access-token" not in response.text


def test_posts_need_the_csrf_token(admin_user, account):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    for url in (
        reverse("connection-connect"),
        reverse("connection-test", args=[account.pk]),
        reverse("connection-disconnect", args=[account.pk]),
        reverse("connection-reconnect", args=[account.pk]),
    ):
        assert client.post(url).status_code == 403
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED


def test_the_health_page_shows_status_expiry_scopes_and_errors(client, admin_user, account):
    account.scopes = "meeting:read:admin meeting:write:admin user:read:admin"
    account.last_error = "Zoom is rate limiting this account; retrying after 2 s"
    account.save()
    client.force_login(admin_user)

    page = client.get(reverse("connection", args=[account.pk])).text

    assert "Connected" in page
    assert "Zoom is rate limiting this account" in page
    assert "webinar:read" in page and "missing" in page  # webinar scopes were not granted
    assert "meeting:read:admin" in page
    assert "Test connection" in page


def test_the_health_page_says_how_much_of_zoom_s_limit_is_used_and_when_it_is_reduced(
    client, admin_user, account, settings
):
    from meetings.ratelimit import backend, throttle_for

    settings.ZOOM_RATE_LIMIT_HEADROOM = 0.96
    settings.ZOOM_RATE_LIMIT_HEADROOM_AFTER_429 = 0.8
    backend().reset(account.pk)
    client.force_login(admin_user)
    url = reverse("connection", args=[account.pk])

    assert "96 % of Zoom's limit: 28.8 of 30 Light requests a second" in client.get(url).text

    throttle_for(account).back_off(2)  # Zoom answered 429
    page = client.get(url).text
    backend().reset(account.pk)

    assert "80 % of Zoom's limit: 24 of 30 Light requests a second" in page
    assert "because Zoom answered 429" in page and "paused for another" in page


def test_connect_sends_the_admin_to_zoom_with_state_and_pkce(client, admin_user, db):
    client.force_login(admin_user)

    response = client.post(reverse("connection-connect"), {"name": "Ops", "plan": "business"})

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}" == f"{OAUTH_BASE}/oauth/authorize"
    )
    query = parse_qs(location.query)
    pending = client.session[SESSION_KEY]
    assert query["client_id"] == ["dashboard-client"]
    assert query["response_type"] == ["code"]
    assert query["state"] == [pending["state"]]
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0] != pending["code_verifier"]
    assert query["redirect_uri"] == ["http://testserver/connections/callback/"]
    assert "dashboard-client-secret" not in response["Location"]
    assert ZoomAccount.objects.count() == 0


def test_connect_uses_the_configured_redirect_url(client, admin_user, settings, db):
    settings.ZOOM_OAUTH_REDIRECT_URL = "https://ops.example.com/connections/callback/"
    client.force_login(admin_user)
    response = client.post(reverse("connection-connect"), {"plan": "pro"})
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["redirect_uri"] == ["https://ops.example.com/connections/callback/"]


def test_connect_without_an_oauth_app_says_what_to_configure(client, admin_user, settings, db):
    settings.ZOOM_CLIENT_ID = ""
    settings.ZOOM_CLIENT_SECRET = ""
    settings.ZOOM_SANDBOX = False
    client.force_login(admin_user)
    response = client.post(reverse("connection-connect"), {"plan": "pro"})
    assert response.status_code == 200
    assert "ZOOM_CLIENT_ID" in response.text
    assert SESSION_KEY not in client.session


def test_connect_refuses_a_bad_plan_with_the_form(client, admin_user, db):
    client.force_login(admin_user)
    response = client.post(reverse("connection-connect"), {"plan": "platinum"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    assert SESSION_KEY not in client.session


def test_connect_keeps_a_long_display_name_and_says_it_is_too_long(client, admin_user, db):
    # The name field had maxlength="190": a browser cut a pasted longer name without a word.
    client.force_login(admin_user)
    html = client.get(reverse("connection-connect")).content.decode()
    assert "maxlength" not in html.split('name="name"')[1].split(">")[0]
    name = "Operations " * 20  # 220 characters
    response = client.post(reverse("connection-connect"), {"name": name, "plan": "pro"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ensure this value has at most 190 characters (it has 219)." in html
    name_box = html.split('name="name"')[1].split(">")[0]
    assert 'value="' + name + '"' in name_box  # as typed, trailing space too
    assert 'aria-invalid="true"' in name_box
    assert 'role="alert"' in html
    assert SESSION_KEY not in client.session


def start(client):
    client.post(reverse("connection-connect"), {"plan": "pro"})
    return client.session[SESSION_KEY]["state"]


def callback(client, **params):
    return client.get(reverse("connection-callback"), params)


def test_a_callback_without_state_is_refused_with_a_page(client, admin_user, db):
    client.force_login(admin_user)
    start(client)
    response = callback(client, code="abc")
    assert response.status_code == 400
    assert "no state" in response.text
    assert ZoomAccount.objects.count() == 0


def test_a_callback_with_a_wrong_state_is_refused_and_ends_the_attempt(client, admin_user, db):
    client.force_login(admin_user)
    state = start(client)
    response = callback(client, code="abc", state=state + "x")
    assert response.status_code == 400
    assert "unknown, used or expired" in response.text
    assert SESSION_KEY not in client.session  # the real state cannot be tried next
    assert callback(client, code="abc", state=state).status_code == 400
    assert ZoomAccount.objects.count() == 0


def test_a_callback_with_no_attempt_in_progress_is_refused(client, admin_user, db):
    client.force_login(admin_user)
    response = callback(client, code="abc", state="made-up")
    assert response.status_code == 400
    assert "unknown, used or expired" in response.text


def test_a_callback_with_access_denied_says_so(client, admin_user, db):
    client.force_login(admin_user)
    state = start(client)
    response = callback(client, error="access_denied", state=state)
    assert response.status_code == 400
    assert "not granted" in response.text
    assert ZoomAccount.objects.count() == 0
    assert SESSION_KEY not in client.session


def test_a_callback_with_another_error_names_it_escaped(client, admin_user, db):
    client.force_login(admin_user)
    state = start(client)
    response = callback(client, error="<script>x</script>", state=state)
    assert response.status_code == 400
    assert "<script>x</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_a_callback_without_a_code_is_refused(client, admin_user, db):
    client.force_login(admin_user)
    state = start(client)
    response = callback(client, state=state)
    assert response.status_code == 400
    assert "no authorization code" in response.text
    assert ZoomAccount.objects.count() == 0


def test_reconnect_of_an_oauth_account_goes_through_zoom_again(client, admin_user, account):
    account.status = ZoomAccount.Status.NEEDS_RECONNECT
    account.save()
    client.force_login(admin_user)

    page = client.get(reverse("connection-reconnect", args=[account.pk]))
    response = client.post(reverse("connection-reconnect", args=[account.pk]))

    assert page.status_code == 200
    assert response.status_code == 302
    assert response["Location"].startswith(f"{OAUTH_BASE}/oauth/authorize?")
    assert client.session[SESSION_KEY]["account"] == account.pk


def test_disconnect_asks_for_confirmation_first(client, admin_user, account):
    client.force_login(admin_user)
    response = client.get(reverse("connection-disconnect", args=[account.pk]))
    assert response.status_code == 200
    assert "Disconnect “Acme”?" in response.text
    account.refresh_from_db()
    assert account.status == ZoomAccount.Status.CONNECTED


def test_an_unknown_account_is_a_404(client, admin_user, db):
    client.force_login(admin_user)
    assert client.get(reverse("connection", args=[999999])).status_code == 404
    assert client.post(reverse("connection-test", args=[999999])).status_code == 404


def test_the_reconnect_banner_shows_on_dashboard_pages_for_everyone_who_may_see_them(
    client, viewer, admin_user, account
):
    # given an account Zoom refused
    account.status = ZoomAccount.Status.NEEDS_RECONNECT
    account.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_meeting"))

    # then admins see it with a Reconnect button, viewers see it too
    client.force_login(admin_user)
    admin_page = client.get(reverse("connections")).text
    client.force_login(viewer)
    viewer_page = client.get(reverse("overview")).text

    for page in (admin_page, viewer_page):
        assert "“Acme” needs to be reconnected" in page
    assert "Reconnect" in admin_page


def test_no_banner_when_every_account_is_connected(client, admin_user, account):
    client.force_login(admin_user)
    assert "needs to be reconnected" not in client.get(reverse("connections")).text


def test_no_banner_for_users_without_dashboard_access(client, outsider, account):
    account.status = ZoomAccount.Status.NEEDS_RECONNECT
    account.save()
    client.force_login(outsider)
    assert "Acme" not in client.get(reverse("overview")).text


def test_the_demo_falls_back_to_the_sandbox_apps_only_for_a_local_zoom(settings):
    from meetings.zoom.oauth import oauth_app_credentials, server_to_server_defaults
    from meetings.zoom.sandbox import DEFAULT_OAUTH_CLIENT_ID, DEFAULT_S2S_CLIENT_ID

    settings.ZOOM_CLIENT_ID = settings.ZOOM_CLIENT_SECRET = settings.ZOOM_ACCOUNT_ID = ""
    settings.ZOOM_SANDBOX = None
    settings.DEBUG = True
    settings.ZOOM_OAUTH_BASE_URL = "http://127.0.0.1:8100"
    assert oauth_app_credentials()[0] == DEFAULT_OAUTH_CLIENT_ID
    assert server_to_server_defaults()[1] == DEFAULT_S2S_CLIENT_ID

    settings.ZOOM_OAUTH_BASE_URL = "https://zoom.us"
    assert oauth_app_credentials() == ("", "")

    settings.ZOOM_OAUTH_BASE_URL = "http://localhost:8100"
    settings.ZOOM_SANDBOX = False
    assert oauth_app_credentials() == ("", "")

    settings.ZOOM_SANDBOX = None
    settings.DEBUG = False
    assert oauth_app_credentials() == ("", "")

    settings.ZOOM_CLIENT_ID, settings.ZOOM_CLIENT_SECRET = "mine", "my-secret"
    settings.DEBUG = True
    assert oauth_app_credentials() == ("mine", "my-secret")


def test_the_connect_and_reconnect_pages_let_their_form_go_on_to_zoom(client, admin_user, account):
    # The policy's form-action also governs where a submitted form is redirected.
    client.force_login(admin_user)
    for url in (reverse("connection-connect"), reverse("connection-reconnect", args=[account.pk])):
        policy = client.get(url)["Content-Security-Policy"]
        form_action = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
        assert form_action.split()[1:] == ["'self'", OAUTH_BASE]
    listing = client.get(reverse("connections"))["Content-Security-Policy"]
    assert OAUTH_BASE not in listing
