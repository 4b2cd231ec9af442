"""Who sees which Zoom connection, and may act on it: the one place every screen asks.

A user's role on a connection is the higher of their global role and their grant on it
(meetings/models/access.py):

- Global: superusers are admins everywhere; `meetings.view_meeting` (the "Zoom viewers" group)
  or any action permission (the "Zoom operators" group) lets a user see every connection, and
  each action permission (`KIND_PERMISSIONS`) lets them do that kind everywhere.
- Per connection (`ConnectionGrant`): a viewer grant lets a user see that connection; an
  operator grant gives them, on that connection only, the action permissions the operators group
  holds; an admin grant every action kind there.

A user with no global role sees only the connections they hold a grant on: the others'
meetings, webinars, past meetings, actions and batches are absent from every list and answer 404
(not 403, which would confirm they exist). On a connection a user sees but may not act on, the
buttons are hidden and a POST is refused with 403, as before.

The answers are cached on the user object (one request's), so a page asks as often as it likes.
"""

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q

from .models import Action, Batch, Meeting, PastMeeting, WebhookEvent, Webinar, ZoomAccount
from .models.access import ROLE_RANK, ConnectionGrant, Role
from .models.actions import KIND_PERMISSIONS
from .roles import OPERATORS

VIEW_PERMISSION = "meetings.view_meeting"
# Who may see the network address an action was requested from (superusers always).
CLIENT_ADDRESS_PERMISSION = "meetings.see_client_addresses"
# Who may browse the access audit (sign-ins, grants, approvals) in the admin.
ACCESS_AUDIT_PERMISSION = "meetings.view_accessevent"

_GRANTS = "_zoom_connection_grants"
_OPERATOR_PERMS = "_zoom_operator_permissions"
# What makes a global admin besides superuser status: managing connections, which the
# "Zoom admins" group holds and operators do not.
ADMIN_PERMISSION = "meetings.change_zoomaccount"


def _active(user):
    return bool(user is not None and user.is_authenticated and user.is_active)


def sees_everything(user):
    """The global viewer: sees every connection (superusers, viewers, operators)."""
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    granted = user.get_all_permissions()  # cached on the user by Django
    return VIEW_PERMISSION in granted or any(p in granted for p in KIND_PERMISSIONS.values())


def grants(user):
    """{account pk: Role} of the user's connection grants (one query, cached on the user)."""
    if not _active(user):
        return {}
    cached = getattr(user, _GRANTS, None)
    if cached is None:
        cached = {
            account: Role(role)
            for account, role in ConnectionGrant.objects.filter(user=user).values_list(
                "account_id", "role"
            )
        }
        setattr(user, _GRANTS, cached)
    return cached


def forget(user):
    """Drop the cached answers (after the user's grants or groups changed in this request)."""
    for name in (_GRANTS, _OPERATOR_PERMS, "_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        if hasattr(user, name):
            delattr(user, name)


def can_view_dashboard(user):
    """May see the dashboard at all: a global role, or a grant on at least one connection."""
    return sees_everything(user) or bool(grants(user))


def visible_account_ids(user):
    """None when the user sees every connection, else the pks of the ones they may see."""
    if sees_everything(user):
        return None
    return set(grants(user))


def visible_accounts(user):
    """The connections this user may see, as a queryset."""
    ids = visible_account_ids(user)
    if ids is None:
        return ZoomAccount.objects.all()
    return ZoomAccount.objects.filter(pk__in=ids)


def sees_account(user, account):
    ids = visible_account_ids(user)
    account_id = getattr(account, "pk", account)
    return ids is None or account_id in ids


def _global_role(user):
    if not _active(user):
        return None
    if user.is_superuser:
        return Role.ADMIN
    granted = user.get_all_permissions()
    if ADMIN_PERMISSION in granted:
        return Role.ADMIN  # the "Zoom admins" group (meetings/roles.py): manages connections
    if any(p in granted for p in KIND_PERMISSIONS.values()):
        return Role.OPERATOR
    if VIEW_PERMISSION in granted:
        return Role.VIEWER
    return None


def role_on(user, account):
    """The user's role on this connection (the higher of global and granted), or None."""
    account_id = getattr(account, "pk", account)
    roles = [r for r in (_global_role(user), grants(user).get(account_id)) if r is not None]
    return max(roles, key=ROLE_RANK.__getitem__) if roles else None


def _operator_permissions(user):
    """The action permissions the operators group holds now ("meetings.end_meeting", ...)."""
    cached = getattr(user, _OPERATOR_PERMS, None)
    if cached is None:
        cached = {
            f"meetings.{codename}"
            for codename in Group.objects.filter(
                name=OPERATORS, permissions__content_type__app_label="meetings"
            ).values_list("permissions__codename", flat=True)
        }
        setattr(user, _OPERATOR_PERMS, cached)
    return cached


def can_act(user, account, kind):
    """May this user request KIND (an ActionKind) on this connection?"""
    if not _active(user):
        return False
    permission = KIND_PERMISSIONS[kind]
    if user.has_perm(permission):
        return True  # a global right (superusers have every permission)
    granted = grants(user).get(getattr(account, "pk", account))
    if granted == Role.ADMIN:
        return True
    if granted == Role.OPERATOR:
        return permission in _operator_permissions(user)
    return False


def allowed_kinds(user, account):
    """The action kinds this user may request on this connection (what templates consult)."""
    if not can_view_dashboard(user) or not sees_account(user, account):
        return frozenset()
    return frozenset(kind for kind in KIND_PERMISSIONS if can_act(user, account, kind))


def kinds_anywhere(user):
    """The action kinds this user may request on at least one connection they see."""
    if not can_view_dashboard(user):
        return frozenset()
    kinds = {kind for kind, perm in KIND_PERMISSIONS.items() if user.has_perm(perm)}
    if len(kinds) == len(KIND_PERMISSIONS):
        return frozenset(kinds)  # no grant can add to that (and no query asks)
    for account in grants(user):
        kinds |= allowed_kinds(user, account)
    return frozenset(kinds)


def sees_client_addresses(user):
    return _active(user) and (user.is_superuser or user.has_perm(CLIENT_ADDRESS_PERMISSION))


# --- querysets restricted to what a user may see --------------------------------------------


def _restricted(queryset, user, field="account"):
    ids = visible_account_ids(user)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{field}__in": ids})


def restrict(queryset, user):
    """Any queryset of a model with an `account` (or, for accounts, itself) narrowed to the
    connections this user may see."""
    if queryset.model is Batch:
        ids = visible_account_ids(user)
        return queryset if ids is None else queryset.filter(_visible_batch(ids))
    field = "pk" if queryset.model is ZoomAccount else "account"
    return _restricted(queryset, user, field)


def visible_meetings(user):
    return _restricted(Meeting.objects.all(), user)


def visible_webinars(user):
    return _restricted(Webinar.objects.all(), user)


def visible_past_meetings(user):
    return _restricted(PastMeeting.objects.all(), user)


def visible_actions(user):
    return _restricted(Action.objects.all(), user)


def _visible_batch(ids):
    """A batch over several connections (it names none) is seen by whoever sees each of them."""
    elsewhere = Action.objects.filter(batch=OuterRef("pk")).exclude(account__in=ids)
    return Q(account__in=ids) | (Q(account__isnull=True) & ~Exists(elsewhere))


def visible_batches(user):
    return restrict(Batch.objects.all(), user)


def visible_webhook_events(user):
    return _restricted(WebhookEvent.objects.all(), user)
