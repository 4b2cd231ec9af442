"""
Zoom connections: the admins' screen to connect, check, reconnect and disconnect Zoom accounts.

Only admins (superusers, or `meetings.manage_connections`) get here; everyone else gets 403 from
the view itself. The OAuth flow keeps its `state` and PKCE verifier in the server-side session,
for one use: the callback pops them before looking at anything else. Every refusal (no state,
wrong or reused state, access denied, a code Zoom refuses, credentials Zoom rejects) is a page
saying what happened, with nothing stored.
"""

import logging
import secrets
import time
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import budget, ratelimit, webhooks
from ..fields import decrypt, encrypt
from ..forms import DashboardForm, FullLengthCharField
from ..models import Plan, ZoomAccount
from ..presets import presets_for
from ..zoom import oauth
from ..zoom.errors import ZoomError

logger = logging.getLogger(__name__)

SESSION_KEY = "zoom_oauth_pending"
# How long an authorization may take, consent included. Zoom's codes live 5 minutes; an admin
# who wandered off for longer starts again rather than completing someone else's old flow.
PENDING_MAX_AGE = 15 * 60


def can_manage_connections(user):
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_superuser or user.has_perm("meetings.manage_connections"))
    )


def _require_admin(request):
    if not can_manage_connections(request.user):
        raise PermissionDenied("Only administrators manage Zoom connections.")


def _account_for(request, pk):
    _require_admin(request)
    return get_object_or_404(ZoomAccount, pk=pk)


def _history(request, account, flag, message):
    """A line in the account's admin history: who connected, reconnected or disconnected it."""
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[account],
        action_flag=flag,
        change_message=message,
        single_object=True,
    )


def _problem(request, title, message, *, status=400, account=None, retry_url=None):
    return render(
        request,
        "meetings/connections/problem.html",
        {"title": title, "message": message, "account": account, "retry_url": retry_url},
        status=status,
    )


def _forms_may_go_to_zoom(response):
    """Let this page's form be redirected to Zoom's consent page.

    The Content-Security-Policy's form-action is 'self', and browsers apply it to where a form
    submission is redirected as well: the Connect and Reconnect forms, whose answer is a redirect
    to ZOOM_OAUTH_BASE_URL/oauth/authorize, would be blocked. Those two pages (only) get the same
    policy with Zoom's OAuth origin added to form-action; the middleware keeps a view's header.
    """
    from django.conf import settings

    policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
    if not policy:
        return response
    parts = urlsplit(settings.ZOOM_OAUTH_BASE_URL)
    origin = f"{parts.scheme}://{parts.netloc}"
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    if any(d.split()[0] == "form-action" for d in directives):
        directives = [f"{d} {origin}" if d.split()[0] == "form-action" else d for d in directives]
    header = (
        "Content-Security-Policy-Report-Only"
        if getattr(settings, "CSP_REPORT_ONLY", False)
        else "Content-Security-Policy"
    )
    response.headers[header] = "; ".join(directives)
    return response


def _redirect_uri(request):
    from django.conf import settings

    return settings.ZOOM_OAUTH_REDIRECT_URL or request.build_absolute_uri(
        reverse("connection-callback")
    )


def webhook_secret_field(**kwargs):
    """The app's webhook secret token: write-only (never rendered back), full length."""
    return FullLengthCharField(
        label="Webhook secret token",
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="From the Zoom app's page in the App Marketplace (Features → Access → Secret "
        "token). Each Zoom app has its own; Zoom signs the app's events with it.",
        **kwargs,
    )


class WebhookSecretForm(DashboardForm):
    webhook_secret_token = webhook_secret_field(required=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["webhook_secret_token"].label = "New webhook secret token"
        self.fields["webhook_secret_token"].help_text += (
            " Saving replaces the stored one: after regenerating the token in Zoom, enter the "
            "new one here."
        )


class ConnectForm(DashboardForm):
    # Without the HTML maxlength: a browser cut a pasted longer name at 190 without a word;
    # the form says how long it is instead, as the stream fields do.
    name = FullLengthCharField(
        label="Display name",
        max_length=190,
        required=False,
        help_text="How the dashboard names this account. Empty: the Zoom user's name and email.",
    )
    plan = forms.ChoiceField(
        choices=Plan.choices,
        initial=Plan.PRO,
        help_text="The account's Zoom plan: it sets the rate limits the dashboard keeps to.",
    )
    webhook_secret_token = webhook_secret_field(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["webhook_secret_token"].help_text += (
            " Empty: the server's ZOOM_WEBHOOK_SECRET_TOKEN (right when only one Zoom app "
            "sends events here)."
        )


class ServerToServerCredentialsForm(DashboardForm):
    # A secret cut at maxlength by the browser would only come back as Zoom's "invalid client".
    client_secret = FullLengthCharField(
        label="New client secret",
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="From the app's page in the Zoom App Marketplace. Leave empty to try the "
        "stored one again.",
    )


# --- Pages ----------------------------------------------------------------------------------


@login_required
@require_GET
def connections(request):
    _require_admin(request)
    accounts = list(ZoomAccount.objects.all())
    client_id, _ = oauth.oauth_app_credentials()
    return render(
        request,
        "meetings/connections/list.html",
        {"accounts": accounts, "oauth_app_configured": bool(client_id)},
    )


def _detail_context(request, account, **extra):
    from django.conf import settings

    return {
        "account": account,
        "limiter": ratelimit.status(account),
        "sync_budget": budget.page_status(account),
        "webhook_url": request.build_absolute_uri(reverse("zoom-webhook")),
        "webhook_events": webhooks.subscription_events(),
        "default_webhook_secret": bool(settings.ZOOM_WEBHOOK_SECRET_TOKEN),
        "webhook_form": WebhookSecretForm(),
        # Names and destinations only: a preset's key is never read for a page.
        "stream_presets": list(
            presets_for(account).only("pk", "name", "stream_url", "page_url", "resolution")
        ),
        **extra,
    }


@login_required
@require_GET
def connection(request, pk):
    account = _account_for(request, pk)
    return render(request, "meetings/connections/detail.html", _detail_context(request, account))


@sensitive_post_parameters("webhook_secret_token")
@login_required
@require_POST
def webhook_secret(request, pk):
    """Set (or rotate) the connection's webhook secret token. Never shown back or logged."""
    account = _account_for(request, pk)
    if account.status == ZoomAccount.Status.DISCONNECTED:
        messages.error(request, "Reconnect the account before setting its webhook secret token.")
        return redirect("connection", pk=account.pk)
    form = WebhookSecretForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, account, webhook_form=form)
        return render(request, "meetings/connections/detail.html", context, status=400)
    replaced = account.webhook_secret_configured
    with transaction.atomic():
        account = ZoomAccount.objects.select_for_update().get(pk=account.pk)
        account.set_webhook_secret_token(form.cleaned_data["webhook_secret_token"])
        account.save(update_fields=list(ZoomAccount.WEBHOOK_SECRET_FIELDS))
    _history(
        request,
        account,
        CHANGE,
        "Replaced the webhook secret token" if replaced else "Set the webhook secret token",
    )
    messages.success(
        request,
        f"Saved the webhook secret token of “{account.name}”: its events are now verified with it.",
    )
    return redirect("connection", pk=account.pk)


@sensitive_post_parameters("webhook_secret_token")
@login_required
@require_http_methods(["GET", "POST"])
def connect(request):
    """A form (display name, plan), then off to Zoom's consent page."""
    _require_admin(request)
    client_id, client_secret = oauth.oauth_app_credentials()
    if not (client_id and client_secret):
        return _problem(
            request,
            "No Zoom OAuth app is configured",
            "Set ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET to the credentials of your Zoom OAuth "
            "app (App Marketplace → your app → App Credentials), and register this redirect "
            f"URL with it: {_redirect_uri(request)}",
            status=200,
        )
    form = ConnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return _start_authorization(
            request,
            client_id,
            name=form.cleaned_data["name"],
            plan=form.cleaned_data["plan"],
            webhook_secret_token=form.cleaned_data["webhook_secret_token"],
        )
    return _forms_may_go_to_zoom(
        render(request, "meetings/connections/connect.html", {"form": form})
    )


def _start_authorization(
    request, client_id, *, name="", plan="", account=None, webhook_secret_token=""
):
    auth = oauth.authorization_request(client_id, _redirect_uri(request))
    request.session[SESSION_KEY] = {
        # Encrypted: sessions are stored in clear, and the trip through Zoom takes minutes.
        "webhook_secret_token": encrypt(webhook_secret_token) if webhook_secret_token else "",
        "state": auth.state,
        "code_verifier": auth.code_verifier,
        "redirect_uri": auth.redirect_uri,
        "client_id": client_id,
        "name": name,
        "plan": plan,
        "account": account.pk if account else None,
        "started": time.time(),
    }
    return redirect(auth.url)


@sensitive_variables("code", "pending", "token", "client_secret", "webhook_secret_token")
@login_required
@require_GET
def callback(request):
    """Zoom sends the admin back here with `code` and `state` (or `error`)."""
    _require_admin(request)
    # Single use: whatever happens next, this authorization attempt is over.
    pending = request.session.pop(SESSION_KEY, None)
    state = request.GET.get("state", "")
    error = request.GET.get("error", "")
    retry_url = reverse("connection-connect")
    if pending and pending.get("account"):
        retry_url = reverse("connection-reconnect", args=[pending["account"]])

    if error:
        if error == "access_denied":
            return _problem(
                request,
                "Zoom access was not granted",
                "The authorization was declined at Zoom, so no account was connected and "
                "nothing was stored.",
                retry_url=retry_url,
            )
        return _problem(
            request,
            "Zoom refused the authorization",
            f"Zoom answered “{error[:100]}”. No account was connected and nothing was stored.",
            retry_url=retry_url,
        )
    if not state:
        return _problem(
            request,
            "This link is not a Zoom authorization",
            "The address has no state parameter, so it cannot be matched to an authorization "
            "started here. Nothing was stored. Start again from the Connect page.",
            retry_url=retry_url,
        )
    if (
        not pending
        # As bytes: compare_digest refuses str with non-ASCII characters (a 500 on a forged
        # state, found by tests/test_hostile_input.py).
        or not secrets.compare_digest(str(pending.get("state", "")).encode(), state.encode())
        or time.time() - pending.get("started", 0) > PENDING_MAX_AGE
    ):
        return _problem(
            request,
            "This authorization is unknown, used or expired",
            "The state in the address does not match an authorization in progress for your "
            "session (it may have been used already, have expired, or have been started in "
            "another browser). Nothing was stored. Start again from the Connect page.",
            retry_url=retry_url,
        )
    code = request.GET.get("code", "")
    if not code or len(code) > 2000:
        return _problem(
            request,
            "Zoom sent no authorization code",
            "Nothing was stored. Start again from the Connect page.",
            retry_url=retry_url,
        )
    account = None
    if pending.get("account"):
        account = ZoomAccount.objects.filter(pk=pending["account"]).first()
        if account is None:
            return _problem(request, "That connection no longer exists", "Nothing was stored.")
    client_id, client_secret = oauth.oauth_app_credentials()
    if client_id != pending.get("client_id"):
        return _problem(
            request,
            "The OAuth app changed during the authorization",
            "ZOOM_CLIENT_ID changed while you were at Zoom. Nothing was stored; start again.",
            retry_url=retry_url,
        )
    try:
        token = oauth.exchange_code(
            client_id=client_id,
            client_secret=client_secret,
            code=code,
            redirect_uri=pending["redirect_uri"],
            code_verifier=pending["code_verifier"],
        )
        stored_secret = pending.get("webhook_secret_token") or ""
        webhook_secret_token = decrypt(stored_secret) if stored_secret else ""
        account, created = oauth.complete_oauth_connection(
            token=token,
            client_id=client_id,
            client_secret=client_secret,
            user=request.user,
            name=pending.get("name", ""),
            plan=pending.get("plan", ""),
            account=account,
            webhook_secret_token=webhook_secret_token,
        )
    except oauth.OAuthRefused as e:
        return _problem(
            request,
            "Zoom refused the authorization code",
            f"{e.describe()}. Nothing was stored. Start again: codes can be used once, within "
            "5 minutes.",
            retry_url=retry_url,
        )
    except ZoomError as e:
        return _problem(
            request,
            "The Zoom account could not be connected",
            f"{e.describe()}. Nothing was stored.",
            status=502 if not e.permanent else 400,
            retry_url=retry_url,
        )
    verb = "Connected" if created else "Reconnected"
    _history(
        request,
        account,
        ADDITION if created else CHANGE,
        f"{verb} with OAuth (Zoom user {account.connected_as})",
    )
    messages.success(
        request,
        f"{verb} the Zoom account “{account.name}” as {account.connected_as or 'its user'}.",
    )
    return redirect("connection", pk=account.pk)


@login_required
@require_POST
def test(request, pk):
    """Call GET /users/me as the account and show the outcome in its health panel."""
    account = _account_for(request, pk)
    try:
        me = oauth.check_connection(account)
    except ZoomError as e:
        outcome = ("error", f"Test failed: {e.describe()}")
    else:
        outcome = ("success", f"Zoom answered: signed in as {me.email or me.id}.")
    account.refresh_from_db()
    if request.htmx:
        return render(
            request,
            "meetings/connections/detail.html#health",
            {
                "account": account,
                "test_outcome": outcome,
                "limiter": ratelimit.status(account),
                "sync_budget": budget.page_status(account),
            },
        )
    getattr(messages, outcome[0])(request, outcome[1])
    return redirect("connection", pk=account.pk)


@login_required
@require_http_methods(["GET", "POST"])
def disconnect(request, pk):
    """GET: the confirmation page (what the dialog shows without JavaScript). POST: do it."""
    account = _account_for(request, pk)
    if request.method == "GET":
        return render(request, "meetings/connections/disconnect.html", {"account": account})
    if account.status == ZoomAccount.Status.DISCONNECTED and not account.access_token:
        messages.info(request, f"“{account.name}” was already disconnected.")
        return redirect("connection", pk=account.pk)
    account, warning = oauth.disconnect(account)
    _history(request, account, CHANGE, "Disconnected (tokens revoked at Zoom and wiped)")
    messages.success(
        request,
        f"Disconnected “{account.name}”. Its history stays; reconnect it to act on it again.",
    )
    if warning:
        messages.warning(request, warning)
    return redirect("connection", pk=account.pk)


@sensitive_post_parameters("client_secret")
@login_required
@require_http_methods(["GET", "POST"])
def reconnect(request, pk):
    """OAuth: back through Zoom's consent. Server-to-Server: a new token with the stored or a
    new client secret."""
    account = _account_for(request, pk)
    if account.is_oauth:
        client_id, client_secret = oauth.oauth_app_credentials()
        if request.method == "POST":
            if not (client_id and client_secret):
                return _problem(
                    request,
                    "No Zoom OAuth app is configured",
                    "Set ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET, then reconnect.",
                    account=account,
                )
            return _start_authorization(request, client_id, account=account)
        return _forms_may_go_to_zoom(
            render(request, "meetings/connections/reconnect.html", {"account": account})
        )

    form = ServerToServerCredentialsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        client_secret = form.cleaned_data["client_secret"] or account.client_secret
        if not client_secret:
            form.add_error("client_secret", "No client secret is stored: enter it.")
        else:
            try:
                account, _ = oauth.connect_server_to_server(
                    zoom_account_id=account.zoom_account_id,
                    client_id=account.client_id,
                    client_secret=client_secret,
                    user=request.user,
                    account=account,
                )
            except oauth.OAuthRefused as e:
                form.add_error(
                    "client_secret" if e.error == "invalid_client" else None,
                    f"{e.describe()}. Nothing was changed.",
                )
            except ZoomError as e:
                form.add_error(None, f"{e.describe()}. Nothing was changed.")
            else:
                _history(request, account, CHANGE, "Reconnected (Server-to-Server token)")
                messages.success(request, f"Reconnected “{account.name}”.")
                return redirect("connection", pk=account.pk)
    return render(
        request, "meetings/connections/reconnect.html", {"account": account, "form": form}
    )


urlpatterns = [
    path("connections/", connections, name="connections"),
    path("connections/connect/", connect, name="connection-connect"),
    path("connections/callback/", callback, name="connection-callback"),
    path("connections/<int:pk>/", connection, name="connection"),
    path("connections/<int:pk>/test/", test, name="connection-test"),
    path("connections/<int:pk>/disconnect/", disconnect, name="connection-disconnect"),
    path("connections/<int:pk>/reconnect/", reconnect, name="connection-reconnect"),
    path("connections/<int:pk>/webhook-secret/", webhook_secret, name="connection-webhook-secret"),
]
