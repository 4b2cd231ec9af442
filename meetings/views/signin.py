"""The sign-in page: allauth's (throttled, then the second factor), with "Sign in with <provider>"
when single sign-on is set up, and with OIDC_ONLY the password form folded away for emergencies."""

from allauth.account.views import LoginView
from django.conf import settings

from ..forms import SignInForm


class SignInView(LoginView):
    form_class = SignInForm
    template_name = "registration/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sso_enabled"] = settings.OIDC_ENABLED
        context["sso_name"] = settings.OIDC_PROVIDER_NAME
        context["oidc_only"] = settings.OIDC_ONLY
        context["next"] = context.get("redirect_field_value") or ""
        return context
