from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path


@login_required
def overview(request):
    return render(request, "meetings/overview.html", {})


urlpatterns = [
    path("", overview, name="overview"),
]
