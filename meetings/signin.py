"""Signing in with a password: allauth's account adapter (throttling, OIDC_ONLY, the audit),
the sessions' idle and absolute lifetimes, the second factor some roles must have, and the
sign-in half of the access audit (meetings.models.record_access).

A session ends SESSION_IDLE_MINUTES after the user last did something and SESSION_MAX_HOURS after
they signed in, whatever they did. "Did something" is a page load, a form post, or an htmx
request a person triggered: the dashboard's own refreshes (polls every few seconds, a list
refreshed when a job finishes) are htmx requests that static/meetings/app.js does not mark with
ACTIVITY_HEADER, so a dashboard left open on a screen does not stay signed in forever.
"""

import logging
import time
from urllib.parse import quote

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.timezone import now
from django_htmx.http import HttpResponseClientRedirect

from .middleware import client_address
from .models import AccessEvent, ConnectionGrant, Role, record_access

log = logging.getLogger(__name__)

SIGNED_IN_AT = "zoomadmin_signed_in_at"
LAST_ACTIVE = "zoomadmin_last_active"
VIA_SSO = "zoomadmin_sso"
MFA_CHECKED_AT = "zoomadmin_mfa_checked_at"
# A user found not to need a set-up (they have a second factor, or their roles need none) is
# looked at again after this long, not on every request (three queries each).
MFA_RECHECK_SECONDS = 300
# Sent by app.js on htmx requests a person triggered (a click, typing, a form).
ACTIVITY_HEADER = "X-Zoomadmin-Activity"
# The last-activity time is written at most this often (a session save per click is wasted).
ACTIVITY_RESOLUTION_SECONDS = 30


# --- the audit of sign-ins ------------------------------------------------------------------


def _ip(request):
    return client_address(request.META) if request is not None else None


def on_signed_in(sender, request, user, sociallogin=None, **kwargs):
    """allauth's user_logged_in: a password (and second factor) or single sign-on accepted."""
    if sociallogin is not None:
        request.session[VIA_SSO] = True
        record_access(
            AccessEvent.Kind.SSO,
            user=user,
            client_ip=_ip(request),
            provider=sociallogin.provider.name if sociallogin.provider else "single sign-on",
        )
    else:
        record_access(AccessEvent.Kind.SIGNED_IN, user=user, client_ip=_ip(request))


def on_session_started(sender, request, user, **kwargs):
    """Django's user_logged_in (every way of signing in): the session's clocks start."""
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = request.session[LAST_ACTIVE] = time.time()


def on_signed_out(sender, request, user, **kwargs):
    if user is not None and request is not None and not getattr(request, "_session_expired", 0):
        record_access(AccessEvent.Kind.SIGNED_OUT, user=user, client_ip=_ip(request))


def on_mfa_event(event):
    def receiver(sender, request=None, user=None, authenticator=None, **kwargs):
        if event == "removed" and request is not None and hasattr(request, "session"):
            request.session.pop(MFA_CHECKED_AT, None)  # look again at the next request
        record_access(
            AccessEvent.Kind.MFA,
            user=user,
            client_ip=_ip(request),
            success=event != "failed",
            event=event,
            method=getattr(authenticator, "type", "") or "",
        )

    return receiver


def connect_signals():
    from allauth.account.signals import user_logged_in as allauth_logged_in
    from allauth.mfa import signals as mfa
    from django.contrib.auth.signals import user_logged_in, user_logged_out

    allauth_logged_in.connect(on_signed_in, dispatch_uid="zoomadmin.signed_in")
    user_logged_in.connect(on_session_started, dispatch_uid="zoomadmin.session_started")
    user_logged_out.connect(on_signed_out, dispatch_uid="zoomadmin.signed_out")
    for signal, event in (
        (mfa.authenticator_added, "added"),
        (mfa.authenticator_removed, "removed"),
        (mfa.authenticator_reset, "reset"),
        (mfa.authenticator_used, "used"),
        (mfa.authentication_failed, "failed"),
    ):
        signal.connect(on_mfa_event(event), dispatch_uid=f"zoomadmin.mfa.{event}", weak=False)


# --- allauth's account adapter --------------------------------------------------------------


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # The same words whether the username exists or not, and whatever the cause.
        "username_password_mismatch": (
            "Please enter a correct username and password. Note that both fields may be "
            "case-sensitive."
        ),
        "too_many_login_attempts": (
            "Too many failed sign-ins. Wait a few minutes, then try again, or ask an administrator."
        ),
    }

    def is_open_for_signup(self, request):
        # Accounts are made by an admin (or by a first single sign-on), never by a visitor.
        return False

    def is_reauthentication_required(self, *, app, **kwargs):
        # Setting up a second factor right after signing in (as MFA_REQUIRED_ROLES makes a user
        # do) need not ask for the password just typed again.
        request = getattr(self, "request", None)
        signed_in_at = request.session.get(SIGNED_IN_AT) if request is not None else None
        if signed_in_at and time.time() - signed_in_at < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT:
            return False
        return super().is_reauthentication_required(app=app, **kwargs)

    def get_client_ip(self, request):
        # Behind trusted proxies only (TRUSTED_PROXIES), as the actions' audit does.
        return client_address(request.META) or "0.0.0.0"  # noqa: S104

    def add_message(self, request, level, message_template=None, *args, **kwargs):
        # "Successfully signed in as …" on every sign-in says nothing the page does not.
        if message_template and message_template.endswith(("logged_in.txt", "logged_out.txt")):
            return
        return super().add_message(request, level, message_template, *args, **kwargs)

    def pre_authenticate(self, request, **credentials):
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            # Throttled: the same answer whether or not the username exists (the count is per
            # username typed and per address, not per account).
            record_access(
                AccessEvent.Kind.SIGN_IN_FAILED,
                username=str(credentials.get("username", ""))[:254],
                client_ip=_ip(request),
                success=False,
                reason="too many failed sign-ins",
            )
            raise

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None and settings.OIDC_ONLY and not user.is_superuser:
            # OIDC_ONLY: passwords are for the emergency superusers only. Answered like a wrong
            # password, so the form tells nobody whether theirs was right.
            self.authentication_failed(request, reason="password sign-in is off", **credentials)
            return None
        return user

    def authentication_failed(self, request, reason="wrong username or password", **credentials):
        record_access(
            AccessEvent.Kind.SIGN_IN_FAILED,
            username=str(credentials.get("username", ""))[:254],
            client_ip=_ip(request),
            success=False,
            reason=reason,
        )


# --- ending sessions ------------------------------------------------------------------------


def end_sessions(user):
    """End every open session of USER (their access was taken away); the number ended."""
    from allauth.usersessions.models import UserSession

    ended = 0
    for user_session in UserSession.objects.filter(user=user):
        user_session.end()
        ended += 1
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        # Sessions opened before allauth's session list was kept, or without its middleware.
        uid = str(user.pk)
        for session in Session.objects.filter(expire_date__gt=now()).iterator():
            if session.get_decoded().get("_auth_user_id") == uid:
                session.delete()
                ended += 1
    return ended


def _signed_out_answer(request, text):
    messages.warning(request, text)
    login_url = resolve_url(settings.LOGIN_URL)
    if request.htmx:
        # A poll or a click in a page: the whole page goes to the sign-in page.
        back = request.htmx.current_url_abs_path or "/"
        return HttpResponseClientRedirect(f"{login_url}?next={quote(back)}")
    if request.method == "GET":
        return redirect_to_login(request.get_full_path(), login_url)
    return redirect(login_url)


def counts_as_activity(request):
    """A page load or form post, or an htmx request a person triggered (see the module)."""
    return not request.htmx or request.headers.get(ACTIVITY_HEADER) == "1"


class SessionLifetimeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            session = request.session
            now_ts = time.time()
            started = session.get(SIGNED_IN_AT)
            last = session.get(LAST_ACTIVE)
            if started is None:
                session[SIGNED_IN_AT] = started = now_ts
            if last is None:
                session[LAST_ACTIVE] = last = now_ts
            reason = None
            if now_ts - started > settings.SESSION_MAX_HOURS * 3600:
                reason = "max"
                text = (
                    f"You were signed out: sessions last {settings.SESSION_MAX_HOURS} hours at "
                    "most. Sign in again."
                )
            elif now_ts - last > settings.SESSION_IDLE_MINUTES * 60:
                reason = "idle"
                text = (
                    f"You were signed out after {settings.SESSION_IDLE_MINUTES} minutes without "
                    "activity. Sign in again."
                )
            if reason:
                user = request.user
                request._session_expired = True
                logout(request)
                record_access(
                    AccessEvent.Kind.SIGNED_OUT,
                    user=user,
                    client_ip=_ip(request),
                    reason="idle" if reason == "idle" else "session too old",
                )
                return _signed_out_answer(request, text)
            if counts_as_activity(request) and now_ts - last >= ACTIVITY_RESOLUTION_SECONDS:
                session[LAST_ACTIVE] = now_ts
        return self.get_response(request)


# --- the second factor some roles must have -------------------------------------------------


def roles_of(user):
    """The roles USER holds anywhere: admin, operator, viewer (globally or on a connection)."""
    roles = set()
    if user.is_superuser or user.is_staff:
        roles.add(Role.ADMIN)
    from .roles import ADMINS, OPERATORS, VIEWERS

    groups = set(user.groups.values_list("name", flat=True))
    if ADMINS in groups:
        roles.add(Role.ADMIN)
    if OPERATORS in groups:
        roles.add(Role.OPERATOR)
    if VIEWERS in groups:
        roles.add(Role.VIEWER)
    roles.update(ConnectionGrant.objects.filter(user=user).values_list("role", flat=True))
    return roles


def mfa_required(user):
    required = set(settings.MFA_REQUIRED_ROLES)
    return bool(required) and bool(required & {str(r) for r in roles_of(user)})


class MfaRequiredMiddleware:
    """A user signed in with a password whose role is in MFA_REQUIRED_ROLES and who has no
    second factor yet is sent to set one up, and may open nothing else (but sign out). Single
    sign-on users are the identity provider's to check."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and settings.MFA_REQUIRED_ROLES
            and not request.session.get(VIA_SSO)
            and time.time() - request.session.get(MFA_CHECKED_AT, 0) > MFA_RECHECK_SECONDS
            and not self._exempt(request.path)
        ):
            from allauth.mfa.utils import is_mfa_enabled

            if mfa_required(user) and not is_mfa_enabled(user):
                setup = reverse("mfa_activate_totp")
                if request.htmx:
                    return HttpResponseClientRedirect(setup)
                messages.warning(
                    request,
                    "Your role needs a second factor: set up an authenticator app, or add a "
                    "security key under Second factor, before you continue.",
                )
                return redirect(setup)
            request.session[MFA_CHECKED_AT] = time.time()
        return self.get_response(request)

    @staticmethod
    def _exempt(path):
        return path.startswith(
            (
                reverse("mfa_index"),
                reverse("account_reauthenticate"),
                reverse("logout"),
                "/" + settings.STATIC_URL.lstrip("/"),
                reverse("healthz"),
            )
        )
