from django.apps import AppConfig


class MeetingsConfig(AppConfig):
    name = "meetings"
    verbose_name = "Zoom operations"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
