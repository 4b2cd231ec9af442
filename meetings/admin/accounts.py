"""Zoom accounts in the admin: token health at a glance, never a token or a secret.

Server-to-Server apps are added here (or with `manage.py zoom_connect --server-to-server`): the
client secret is a write-only field, checked with Zoom (a token is fetched) before anything is
saved. OAuth apps are connected from the Connections page, which runs Zoom's consent flow.
"""

from django import forms
from django.contrib import admin, messages
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.timezone import now
from django.views.decorators.debug import sensitive_post_parameters

from ..models import ZoomAccount
from ..zoom import oauth
from ..zoom.errors import ZoomError
from .access import GrantChanges, GrantOnAccountInline
from .guards import SafeChangeList
from .scope import AccountScopedAdmin

TOKEN_STATES = {
    "unreadable": "unreadable: FIELD_ENCRYPTION_KEY cannot decrypt it",
    "none": "none",
    "expired": "expired (renewed on the next call)",
    "expiring": "expiring (renewed on the next call)",
    "valid": "valid",
}


class ZoomAccountForm(forms.ModelForm):
    new_client_secret = forms.CharField(
        label="Client secret",
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: the stored secret is never shown. Leave empty to keep it. "
        "It is checked with Zoom (a token is fetched) before anything is saved.",
    )

    new_webhook_secret_token = forms.CharField(
        label="Webhook secret token",
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: the Zoom app's own secret token, which signs its events. Leave "
        "empty to keep the stored one (or, with none, use ZOOM_WEBHOOK_SECRET_TOKEN).",
    )

    class Meta:
        model = ZoomAccount
        fields = ["name", "zoom_account_id", "client_id", "plan"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.verified_token = None
        self.verified_secret = ""

    def clean(self):
        cleaned = super().clean()
        account = self.instance
        if account.pk and not account.is_server_to_server:
            return cleaned  # OAuth credentials come from the consent flow, not from here
        secret = cleaned.get("new_client_secret") or ""
        account_id = cleaned.get("zoom_account_id") or account.zoom_account_id
        client_id = cleaned.get("client_id") or account.client_id
        if not account.pk and not secret:
            self.add_error("new_client_secret", "A Server-to-Server app needs its client secret.")
        if not account_id:
            self.add_error("zoom_account_id", "A Server-to-Server app needs the Zoom account id.")
        if self.errors:
            return cleaned
        credentials_changed = bool(secret) or any(
            f in self.changed_data for f in ("zoom_account_id", "client_id")
        )
        if not credentials_changed:
            return cleaned
        secret = secret or account.client_secret
        if not secret:
            self.add_error("new_client_secret", "No client secret is stored: enter it.")
            return cleaned
        try:
            self.verified_token = oauth.account_credentials_grant(
                zoom_account_id=account_id, client_id=client_id, client_secret=secret
            )
        except oauth.OAuthRefused as e:
            field = "new_client_secret" if e.error == "invalid_client" else None
            self.add_error(field, f"{e.describe()}. Nothing was saved.")
        except ZoomError as e:
            self.add_error(None, f"Zoom could not check the credentials: {e.describe()}")
        else:
            self.verified_secret = secret
        return cleaned


@admin.register(ZoomAccount)
class ZoomAccountAdmin(GrantChanges, AccountScopedAdmin, SafeChangeList, admin.ModelAdmin):
    form = ZoomAccountForm
    account_field = "pk"
    inlines = (GrantOnAccountInline,)

    def get_inlines(self, request, obj):
        # Roles are given on an existing connection (its page after adding it).
        return self.inlines if obj is not None else ()

    list_display = [
        "name",
        "kind",
        "status",
        "token_status",
        "plan",
        "last_success_at",
        "short_last_error",
    ]
    list_filter = ["kind", "status", "plan"]
    search_fields = ["name", "zoom_account_id", "client_id", "connected_as"]
    actions = ["disconnect_accounts"]
    health_fields = [
        "status",
        "token_status",
        "token_expires_at",
        "last_refreshed_at",
        "scopes",
        "scope_check",
        "last_success_at",
        "last_error",
        "last_error_at",
        "last_sync_at",
        "connected_as",
        "connected_by",
        "created",
    ]

    @method_decorator(sensitive_post_parameters("new_client_secret", "new_webhook_secret_token"))
    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context)

    @method_decorator(sensitive_post_parameters("new_client_secret", "new_webhook_secret_token"))
    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, extra_context)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            credentials = [
                "zoom_account_id",
                "client_id",
                "new_client_secret",
                "new_webhook_secret_token",
            ]
            return [
                (
                    "Server-to-Server app",
                    {
                        "fields": ["name", *credentials, "plan"],
                        "description": "OAuth apps are connected from the Connections page.",
                    },
                )
            ]
        if obj.is_server_to_server:
            main = ["name", "kind", "zoom_account_id", "client_id", "new_client_secret"]
        else:
            main = ["name", "kind", "zoom_account_id", "client_id"]
        main += ["new_webhook_secret_token", "plan"]
        return [(None, {"fields": main}), ("Health", {"fields": self.health_fields})]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        readonly = ["kind", *self.health_fields]
        if obj.is_oauth:
            readonly += ["zoom_account_id", "client_id"]
        return readonly

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("new_webhook_secret_token"):
            obj.set_webhook_secret_token(form.cleaned_data["new_webhook_secret_token"])
        if not change:
            obj.kind = ZoomAccount.Kind.SERVER_TO_SERVER
            obj.connected_by = request.user
        if form.verified_token is not None:
            obj.client_secret = form.verified_secret
            obj.refresh_token = ""
            if change:
                # The check fetched a token outside the row lock (and so invalidated the one
                # workers share); storing it could overwrite a newer one a worker fetched under
                # the lock meanwhile. Drop it: the next call fetches a fresh one, under the lock.
                obj.access_token = ""
                obj.token_expires_at = None
                obj.status = ZoomAccount.Status.CONNECTED
            else:
                obj.store_token(form.verified_token, at=now())
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        # Tell Zoom first: a deleted row must not leave a live token behind.
        oauth.disconnect(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            oauth.disconnect(account)
        super().delete_queryset(request, queryset)

    def has_manage_connections_permission(self, request):
        return request.user.has_perm("meetings.manage_connections")

    @admin.action(
        description="Disconnect selected accounts (revoke and wipe their tokens)",
        permissions=["manage_connections"],
    )
    def disconnect_accounts(self, request, queryset):
        for account in queryset:
            account, warning = oauth.disconnect(account)
            self.log_change(request, account, "Disconnected (tokens revoked at Zoom and wiped)")
            if warning:
                self.message_user(request, f"{account.name}: {warning}", messages.WARNING)
        self.message_user(request, f"Disconnected {queryset.count()} account(s).")

    @admin.display(description="token")
    def token_status(self, obj):
        state = obj.token_state
        text = TOKEN_STATES[state]
        if state in ("valid", "expiring") and obj.token_expires_at:
            text += f" until {obj.token_expires_at:%Y-%m-%d %H:%M:%S %Z}"
        return text

    @admin.display(description="scopes needed")
    def scope_check(self, obj):
        missing = obj.missing_scopes
        if not missing:
            return "all granted"
        return format_html(
            "missing (granular or classic): <code>{}</code>",
            ", ".join(f"{n.granular[0]} / {n.classic[0]}" for n in missing),
        )

    @admin.display(description="last error")
    def short_last_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error
