from django.urls import path

from . import views

# Included by allauth's URL conf (allauth.urls.build_provider_urlpatterns) under accounts/.
urlpatterns = [
    path("sso/login/", views.login, name="sso_login"),
    path("sso/login/callback/", views.callback, name="sso_callback"),
]
