from django.apps import AppConfig


class MeetingsConfig(AppConfig):
    name = "meetings"
    verbose_name = "Zoom operations"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import checks  # noqa: F401  (registers the system checks)
        from .roles import ensure_roles_after_migrate

        # The "Zoom viewers"/"Zoom operators" groups stay complete as models are added.
        post_migrate.connect(ensure_roles_after_migrate, dispatch_uid="meetings.ensure_roles")

        from .signin import connect_signals

        # Sign-ins, sign-outs and second-factor events go to the access audit.
        connect_signals()

        from .logging import install as install_log_scrubbing

        # Every log record, whichever handler writes it, is scrubbed and tagged with its action.
        install_log_scrubbing()
