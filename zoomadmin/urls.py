from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from meetings.views.signin import SignInView

# The admin's own sign-in page would skip the second factor and the throttling: it sends to ours.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("admin/", admin.site.urls),
    # allauth's sign-in (throttled, then the second factor), on the address it always had.
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    # Second factor (accounts/2fa/), single sign-on (accounts/sso/), open sessions.
    path("accounts/", include("allauth.urls")),
    path("", include("meetings.urls")),
]
