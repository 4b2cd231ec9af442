from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path

from meetings.forms import SignInForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(authentication_form=SignInForm), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("meetings.urls")),
]
