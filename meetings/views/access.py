"""Who may see and do what on the dashboard. Every view checks here; templates only hide controls.

A user sees the dashboard with `meetings.view_meeting` (the "Zoom viewers" group), any action
permission (the "Zoom operators" group) or a role on one Zoom connection (a ConnectionGrant);
acting needs the action kind's own permission (`KIND_PERMISSIONS`), globally or through an
operator grant on the meeting's connection (meetings/access.py decides). Superusers have every
permission. Signed-in users with none of these get the "no access" page.
"""

from functools import wraps
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render, resolve_url
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from .. import access as connection_access
from ..middleware import client_address
from ..models.actions import ActionKind
from ..timezones import zone_for

VIEW_PERMISSION = "meetings.view_meeting"
CONNECTIONS_PERMISSION = "meetings.manage_connections"


def can_view(user):
    """May see the dashboard: a global role, or a role on at least one Zoom connection."""
    return connection_access.can_view_dashboard(user)


def can_act(user, kind, account):
    """May request KIND on ACCOUNT (a ZoomAccount or its pk): meetings/access.py decides."""
    return connection_access.can_act(user, account, kind)


def allowed_kinds(user, account):
    """The action kinds this user may request on ACCOUNT: what templates consult to show
    controls."""
    return connection_access.allowed_kinds(user, account)


# What each kind allows, as the refusal says it ("You are not allowed to end meetings.").
KIND_REFUSALS = {
    ActionKind.END_MEETING: "end meetings",
    ActionKind.RECOVER_MEETING: "recover deleted meetings",
    ActionKind.END_WEBINAR: "end webinars",
    ActionKind.UPDATE_LIVESTREAM: "change live stream settings",
    ActionKind.START_LIVESTREAM: "start live streams",
    ActionKind.STOP_LIVESTREAM: "stop live streams",
    ActionKind.UPDATE_WEBINAR_LIVESTREAM: "change webinars' live stream settings",
    ActionKind.START_WEBINAR_LIVESTREAM: "start webinars' live streams",
    ActionKind.STOP_WEBINAR_LIVESTREAM: "stop webinars' live streams",
    ActionKind.FETCH_PAST_MEETING: "fetch past meeting details",
    ActionKind.FETCH_PARTICIPANTS: "fetch past meeting participants",
    ActionKind.SYNC: "sync Zoom accounts",
}


def require_action_permission(user, kind, account):
    """403 with a clear message unless the user may request KIND on ACCOUNT. (Whether they may
    see the account at all is checked before: a connection they may not see answers 404.)"""
    if not can_act(user, kind, account):
        what = KIND_REFUSALS.get(kind, kind.label.lower())
        where = ""
        if connection_access.kinds_anywhere(user) and hasattr(account, "name"):
            where = f" on the Zoom connection “{account.name}”"
        raise PermissionDenied(f"You are not allowed to {what}{where}.")


def get_visible(queryset, user, **lookup):
    """The object of QUERYSET matching LOOKUP among the connections USER may see, else 404."""
    return get_object_or_404(connection_access.restrict(queryset, user), **lookup)


def dashboard_view(view):
    """Signed in (else the sign-in page) and allowed to see the dashboard (else "no access").

    An htmx request whose session has expired (a panel polling overnight) is sent to the sign-in
    page as a whole-page navigation: following the redirect inside the request would paste the
    sign-in form into the panel.
    """

    @wraps(view)
    def signed_in_first(request, *args, **kwargs):
        if not request.user.is_authenticated and request.htmx:
            page = request.htmx.current_url_abs_path or request.get_full_path()
            return HttpResponseClientRedirect(
                f"{resolve_url(settings.LOGIN_URL)}?next={quote(page)}"
            )
        return login_required(checked)(request, *args, **kwargs)

    @wraps(view)
    def checked(request, *args, **kwargs):
        if not can_view(request.user):
            return render(request, "meetings/no_access.html", status=403)
        # Every time on the page in this person's zone (the pages render here, not later).
        zone, source = zone_for(request)
        request.time_zone = zone
        request.time_zone_source = source
        with timezone.override(zone):
            return view(request, *args, **kwargs)

    return signed_in_first


def client_ip(request):
    """The client's address for the audit record: REMOTE_ADDR, or behind the proxies named in
    TRUSTED_PROXIES the client they name in X-Forwarded-For (meetings.middleware)."""
    return client_address(request.META)


def wants_fragment(request):
    """An htmx request for part of a page (not a history restore, which needs the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request
