from allauth.account.decorators import secure_admin_login
from allauth.urls import build_provider_urlpatterns
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
    # allauth's pages (allauth.urls without its deprecated redirects): the second factor
    # (accounts/2fa/), single sign-on (accounts/sso/, meetings/sso/urls.py), open sessions.
    path("accounts/", include("allauth.account.urls")),
    path("accounts/2fa/", include("allauth.mfa.urls")),
    path("accounts/3rdparty/", include("allauth.socialaccount.urls")),
    path("accounts/", include(build_provider_urlpatterns())),
    path("accounts/sessions/", include("allauth.usersessions.urls")),
    path("", include("meetings.urls")),
]
