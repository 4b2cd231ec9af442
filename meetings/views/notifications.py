"""Notifications: each person's subscriptions (which events, about which connection, by e-mail or
to a chat), a "Send a test" button per subscription, and their deliveries' history."""

from django import forms
from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from ..forms import DashboardForm
from ..models import Channel, Delivery, DeliveryState, Subscription, ZoomAccount
from ..notifications import TEST_KIND, EventKind, enqueue_deliveries, may_see_connection
from .access import dashboard_view, wants_fragment

HISTORY_ROWS = 50
# Apprise reads files and runs local programs for some schemes: only services over the network.
REFUSED_SCHEMES = {"file", "windows", "macosx", "dbus", "kde", "glib", "gnome", "qt", "syslog"}


class SubscriptionForm(DashboardForm):
    kinds = forms.MultipleChoiceField(
        label="Tell me when",
        choices=EventKind.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )
    account = forms.ModelChoiceField(
        label="About",
        queryset=ZoomAccount.objects.none(),
        required=False,
        empty_label="Every connection I may see",
    )
    channel = forms.ChoiceField(
        label="By", choices=Channel.choices, widget=forms.RadioSelect, initial=Channel.EMAIL
    )
    destination = forms.CharField(
        label="Chat address",
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=(
            "For a chat: the destination's apprise address, e.g. slack://T…/B…/… or "
            "msteams://… or json://host/path. It holds the destination's token: once saved, "
            "it is never shown again."
        ),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["account"].queryset = ZoomAccount.objects.filter(
            pk__in=[
                a.pk for a in ZoomAccount.objects.only("pk", "name") if may_see_connection(user, a)
            ]
        ).only("pk", "name")

    def clean(self):
        data = super().clean()
        channel = data.get("channel")
        destination = (data.get("destination") or "").strip()
        if channel == Channel.EMAIL:
            if not self.user.email:
                raise forms.ValidationError(
                    "Your account has no e-mail address: ask an administrator to add one, or "
                    "choose a chat."
                )
            data["destination"] = ""
        elif channel == Channel.CHAT:
            if not destination:
                self.add_error("destination", "Enter the chat's address.")
            else:
                import apprise

                scheme = destination.split(":", 1)[0].lower()
                plugin = (
                    apprise.Apprise.instantiate(destination)
                    if scheme not in REFUSED_SCHEMES
                    else None
                )
                if plugin is None:
                    self.add_error(
                        "destination",
                        "This is not a chat address the dashboard can send to. It starts with "
                        "the service, such as slack://, msteams://, discord:// or json://.",
                    )
                data["destination"] = destination
        return data


def _subscription_for(request, pk):
    """The user's own subscription PK (another person's answers 404)."""
    return get_object_or_404(Subscription, pk=pk, user=request.user)


def _page(request, form, status=200):
    subscriptions = (
        Subscription.objects.filter(user=request.user)
        .select_related("account")
        .defer("destination")
    )
    deliveries = Delivery.objects.filter(user=request.user).select_related("account")[:HISTORY_ROWS]
    return render(
        request,
        "meetings/notifications.html",
        {
            "form": form,
            "subscriptions": subscriptions,
            "deliveries": deliveries,
            "kind_labels": dict(EventKind.choices),
            "section": "notifications",
        },
        status=status,
    )


@dashboard_view
@require_http_methods(["GET", "POST"])
def notifications(request):
    if request.method == "POST":
        form = SubscriptionForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            subscription = Subscription.objects.create(
                user=request.user,
                kinds=Subscription.encode_kinds(data["kinds"]),
                account=data["account"],
                channel=data["channel"],
                destination=data["destination"],
            )
            messages.success(
                request,
                f"Subscribed: {subscription.describe()}. Use “Send a test” to check it arrives.",
            )
            return redirect("notifications")
        return _page(request, form, status=400)
    return _page(request, SubscriptionForm(user=request.user))


@dashboard_view
@require_POST
def subscription_delete(request, pk):
    subscription = _subscription_for(request, pk)
    described = subscription.describe()
    subscription.delete()
    messages.success(request, f"Unsubscribed: {described}. Its past deliveries stay listed.")
    return redirect("notifications")


@dashboard_view
@require_POST
def subscription_toggle(request, pk):
    subscription = _subscription_for(request, pk)
    subscription.enabled = not subscription.enabled
    subscription.save(update_fields=["enabled"])
    messages.success(
        request,
        f"{'Resumed' if subscription.enabled else 'Paused'}: {subscription.describe()}.",
    )
    return redirect("notifications")


@dashboard_view
@require_POST
def subscription_test(request, pk):
    """A test message to the subscription's destination, sent like any event (the queue, the
    rate limit, the retries); the answer polls its delivery until it is sent or has failed."""
    subscription = _subscription_for(request, pk)
    with transaction.atomic():
        delivery = Delivery.objects.create(
            subscription=subscription,
            user=request.user,
            kind=TEST_KIND,
            title="Test message from zoomadmin",
            text=(
                f"{request.user.get_username()} asked for this test of a subscription on the "
                "Notifications page. Events you chose will arrive like this."
            ),
            url=reverse("notifications"),
            channel=subscription.channel,
            hint=subscription.hint,
            event_id=f"test{subscription.pk}",
        )
        transaction.on_commit(lambda: enqueue_deliveries([delivery.pk]), robust=True)
    if wants_fragment(request):
        return render(request, "meetings/notifications.html#test-status", {"delivery": delivery})
    messages.success(
        request, "Test message queued: its line in the history below says when it is sent."
    )
    return redirect("notifications")


@dashboard_view
@require_GET
def delivery_status(request, pk):
    delivery = get_object_or_404(Delivery, pk=pk, user=request.user)
    if not wants_fragment(request):
        # The status is a part of the Notifications page: its history says the same.
        return redirect("notifications")
    context = {"delivery": delivery}
    if delivery.state in (DeliveryState.SENT, DeliveryState.FAILED):
        html = render_to_string("meetings/notifications.html#test-status", context, request=request)
        return HttpResponseStopPolling(html)
    return render(request, "meetings/notifications.html#test-status", context)


urlpatterns = [
    path("notifications/", notifications, name="notifications"),
    path("notifications/<int:pk>/delete/", subscription_delete, name="subscription-delete"),
    path("notifications/<int:pk>/toggle/", subscription_toggle, name="subscription-toggle"),
    path("notifications/<int:pk>/test/", subscription_test, name="subscription-test"),
    path("notifications/deliveries/<int:pk>/", delivery_status, name="delivery-status"),
]
