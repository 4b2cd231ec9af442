"""A person's own preferences: the time zone their pages show times in."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from ..forms import PreferencesForm
from ..models import UserPreferences
from .access import dashboard_view


@dashboard_view
@require_http_methods(["GET", "POST"])
def preferences(request):
    current = UserPreferences.objects.filter(user=request.user).first()
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            UserPreferences.objects.update_or_create(
                user=request.user, defaults={"time_zone": form.cleaned_data["time_zone"]}
            )
            chosen = form.cleaned_data["time_zone"] or "your browser's time zone"
            messages.success(request, f"Times are now shown in {chosen}.")
            back = request.POST.get("next", "")
            if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                return redirect(back)
            return redirect("preferences")
    else:
        form = PreferencesForm(initial={"time_zone": current.time_zone if current else ""})
    return render(
        request,
        "meetings/preferences.html",
        {"form": form, "next": request.GET.get("next", "")},
    )


urlpatterns = [
    path("preferences/", preferences, name="preferences"),
]
