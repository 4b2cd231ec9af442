"""What single sign-on does at each sign-in: check the nonce, map the groups to roles (refusing a
user none of whose groups map, and ending their open sessions), record it all in the audit."""

import logging

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.shortcuts import render

from meetings.middleware import client_address
from meetings.models import AccessEvent, ConnectionGrant, Role, ZoomAccount, record_access
from meetings.roles import ADMINS, OPERATORS, VIEWERS
from meetings.signin import end_sessions

from .roles import groups_in, parse_role_map, roles_for

log = logging.getLogger(__name__)

ROLE_GROUPS = {Role.VIEWER: VIEWERS, Role.OPERATOR: OPERATORS, Role.ADMIN: ADMINS}


def id_token_claims(sociallogin):
    return (sociallogin.account.extra_data or {}).get("id_token") or {}


def _refuse(request, provider_name, message, status=403):
    return ImmediateHttpResponse(
        render(
            request,
            "socialaccount/refused.html",
            {"provider_name": provider_name, "message": message},
            status=status,
        )
    )


def global_role_of(user):
    names = set(user.groups.values_list("name", flat=True))
    for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER):
        if ROLE_GROUPS[role] in names:
            return role
    return None


@transaction.atomic
def apply_roles(user, global_role, connection_roles, *, provider_name, client_ip=None):
    """Make USER's global role and single-sign-on connection grants what the provider says.

    The global role is one of the role groups (admin: "Zoom admins" and staff status, never
    superuser); grants an admin made (source "admin") are left alone, and a connection named in
    OIDC_ROLE_MAP that does not exist here is skipped (and said so in the audit)."""
    before = global_role_of(user)
    if before != global_role:
        user.groups.remove(*Group.objects.filter(name__in=ROLE_GROUPS.values()))
        if global_role is not None:
            user.groups.add(Group.objects.get(name=ROLE_GROUPS[global_role]))
        record_access(
            AccessEvent.Kind.ROLE_CHANGED,
            user=user,
            client_ip=client_ip,
            provider=provider_name,
            previous=before or "none",
            role=global_role or "none",
        )
    staff = global_role == Role.ADMIN
    if user.is_staff != staff and not user.is_superuser:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])

    accounts = {a.name: a for a in ZoomAccount.objects.filter(name__in=connection_roles)}
    missing = sorted(set(connection_roles) - set(accounts))
    if missing:
        log.warning("OIDC_ROLE_MAP names connections that do not exist: %s", ", ".join(missing))
    existing = {g.account_id: g for g in ConnectionGrant.objects.filter(user=user)}
    wanted = {}
    for name, account in accounts.items():
        grant = existing.get(account.pk)
        if grant is not None and grant.source != ConnectionGrant.Source.OIDC:
            continue  # an admin's grant wins; single sign-on never touches it
        wanted[account.pk] = (account, connection_roles[name])
    for account_pk, grant in existing.items():
        if grant.source == ConnectionGrant.Source.OIDC and account_pk not in wanted:
            grant.delete()
            record_access(
                AccessEvent.Kind.CONNECTION_GRANTED,
                user=user,
                client_ip=client_ip,
                provider=provider_name,
                connection=grant.account.name,
                previous=grant.role,
                role="none",
            )
    for account_pk, (account, role) in wanted.items():
        grant = existing.get(account_pk)
        if grant is not None and grant.role == role:
            continue
        ConnectionGrant.objects.update_or_create(
            user=user,
            account=account,
            defaults={"role": role, "source": ConnectionGrant.Source.OIDC, "granted_by": None},
        )
        record_access(
            AccessEvent.Kind.CONNECTION_GRANTED,
            user=user,
            client_ip=client_ip,
            provider=provider_name,
            connection=account.name,
            previous=grant.role if grant is not None else "none",
            role=role,
        )
    return missing


class SSOAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin):
        # A first single sign-on creates the user (their roles come from the provider);
        # nobody signs up with a password.
        return True

    def pre_social_login(self, request, sociallogin):
        provider_name = sociallogin.provider.name if sociallogin.provider else "single sign-on"
        claims = id_token_claims(sociallogin)
        ip = client_address(request.META)
        expected_nonce = (sociallogin.state or {}).get("nonce")
        if not expected_nonce or claims.get("nonce") != expected_nonce:
            record_access(
                AccessEvent.Kind.SIGN_IN_FAILED,
                username=str(claims.get("preferred_username") or claims.get("sub") or ""),
                client_ip=ip,
                success=False,
                provider=provider_name,
                reason="the ID token's nonce is not the one this sign-in sent",
            )
            raise _refuse(
                request,
                provider_name,
                "The answer from the sign-in service did not belong to this sign-in. "
                "Start again from the sign-in page.",
            )
        groups = groups_in(claims, settings.OIDC_ROLE_CLAIM)
        global_role, connection_roles = roles_for(groups, parse_role_map(settings.OIDC_ROLE_MAP))
        user = sociallogin.user if sociallogin.is_existing else None
        if global_role is None and not connection_roles:
            username = str(claims.get("preferred_username") or claims.get("sub") or "")
            if user is not None:
                # Access taken away at the provider: nothing of it stays here.
                apply_roles(user, None, {}, provider_name=provider_name, client_ip=ip)
                ended = end_sessions(user)
            else:
                ended = 0
            record_access(
                AccessEvent.Kind.SIGN_IN_FAILED,
                user=user,
                username=username,
                client_ip=ip,
                success=False,
                provider=provider_name,
                reason="no group of the user gives a role",
                sessions_ended=ended,
            )
            raise _refuse(
                request,
                provider_name,
                f"Your {provider_name} account is in no group that may use this dashboard, "
                "so you cannot sign in. If you need access, ask whoever manages those groups.",
            )
        request._sso_roles = (global_role, connection_roles)
        if user is not None:
            apply_roles(
                user, global_role, connection_roles, provider_name=provider_name, client_ip=ip
            )

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        global_role, connection_roles = getattr(request, "_sso_roles", (None, {}))
        apply_roles(
            user,
            global_role,
            connection_roles,
            provider_name=sociallogin.provider.name,
            client_ip=client_address(request.META),
        )
        return user

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ):
        # The reason only (an exception's class and allauth's short message): never a code or a
        # token.
        record_access(
            AccessEvent.Kind.SIGN_IN_FAILED,
            client_ip=client_address(request.META),
            success=False,
            provider=getattr(provider, "name", "single sign-on"),
            reason=str(error or "") or "error",
            error=type(exception).__name__ if exception is not None else "",
            message=str(exception)[:200] if exception is not None else "",
        )
        return super().on_authentication_error(request, provider, error, exception, extra_context)
