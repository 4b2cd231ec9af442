from django.apps import AppConfig


class SSOConfig(AppConfig):
    # allauth finds a provider in an installed app's `provider` module.
    name = "meetings.sso"
    label = "meetings_sso"
    verbose_name = "Single sign-on"

    def ready(self):
        from . import checks  # noqa: F401  (registers the OIDC_ROLE_MAP check)
