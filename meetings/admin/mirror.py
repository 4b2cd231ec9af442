"""The mirror in the admin: read-only. Zoom is the truth; the admin only shows its copy.

Nothing can be added, changed or deleted here (the sync and the webhooks write the mirror), and
a meeting's stream key is never shown: its masked form only.
"""

import json
import re

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal

from ..models import Meeting, PastMeeting, WebhookEvent, Webinar
from ..templatetags.dashboard import MEETING_TYPES
from .guards import SafeChangeList
from .scope import AccountScopedAdmin

# A bigint as PostgreSQL and SQLite write it as text: the only terms Django's "=zoom_id" can match.
INTEGER_TEXT = re.compile(r"0|-?[1-9][0-9]*")


class ReadOnlyAdmin(AccountScopedAdmin, SafeChangeList, admin.ModelAdmin):
    """View permission only: Zoom and the mirror's writers own these rows. Each reader sees the
    rows of the Zoom connections they may see (scope.py)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.hidden_fields] + list(
            self.extra_readonly
        )

    hidden_fields = ()
    extra_readonly = ()

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)


def meeting_type_label(number):
    """Zoom's meeting type by name, its number after it: "Recurring, fixed time (8)"."""
    if number is None:
        return "—"
    name = MEETING_TYPES.get(number)
    return f"{name} ({number})" if name else f"Type {number}"


class MeetingTypeFilter(admin.SimpleListFilter):
    """The types present, by name: the field's own filter offered "2", "3" and "8"."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        numbers = model_admin.get_queryset(request).order_by("type").values_list("type", flat=True)
        return [(n, meeting_type_label(n)) for n in numbers.distinct()]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not INTEGER_TEXT.fullmatch(value) or len(value) > 5:
            return queryset.none()
        return queryset.filter(type=int(value))


@admin.register(Meeting)
class MeetingAdmin(ReadOnlyAdmin):
    list_display = (
        "zoom_id",
        "topic",
        "host_email",
        "status",
        "livestream_status",
        "start_time",
        "account",
        "last_synced_at",
        "last_event_at",
    )
    list_filter = ("status", "livestream_status", "account", MeetingTypeFilter)
    search_fields = ("topic", "host_email", "=zoom_id", "=uuid")
    date_hierarchy = "start_time"
    list_select_related = ("account",)
    # The stream key is a secret: its masked form only, never the field itself.
    hidden_fields = ("stream_key", "type")
    extra_readonly = ("stream_key_masked", "type_label")

    def get_queryset(self, request):
        # The key is not even decrypted for the changelist.
        return super().get_queryset(request).defer("stream_key")

    def get_search_results(self, request, queryset, search_term):
        """Django's search over search_fields (each term in the topic or host, or equal to the id
        or UUID), finding the same rows, with a condition every index can answer.

        Django compares "=zoom_id" as text (`UPPER(zoom_id::text) = UPPER('sales')`), which no
        index answers: OR'ed with the rest, it made every search a sequential scan of the mirror
        (BENCHMARKS.md section 2), even for the topic and host, which have trigram indexes
        (migration 0007). A bigint's text equals a term only when the term is an integer written
        the way the database writes one, so such a term is compared as a number
        (meeting_zoom_id_idx) and any other term leaves the id out. The UUID has its own index.
        """
        if not search_term:
            return queryset, False
        terms = []
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            match = Q(topic__icontains=bit) | Q(host_email__icontains=bit) | Q(uuid__iexact=bit)
            # The length first: int() refuses more than 4,300 digits (a 500, not a search).
            if len(bit) <= 20 and INTEGER_TEXT.fullmatch(bit) and -(2**63) <= int(bit) < 2**63:
                match |= Q(zoom_id=int(bit))
            terms.append(match)
        return queryset.filter(*terms), False

    @admin.display(description="stream key")
    def stream_key_masked(self, obj):
        return obj.masked_stream_key or "—"

    @admin.display(description="type", ordering="type")
    def type_label(self, obj):
        return meeting_type_label(obj.type)


@admin.register(Webinar)
class WebinarAdmin(ReadOnlyAdmin):
    list_display = (
        "zoom_id",
        "topic",
        "host_email",
        "status",
        "livestream_status",
        "start_time",
        "account",
        "last_synced_at",
        "last_event_at",
    )
    list_filter = ("status", "livestream_status", "account")
    search_fields = ("topic", "host_email", "=zoom_id", "=uuid")
    date_hierarchy = "start_time"
    list_select_related = ("account",)
    # The stream key is a secret, as a meeting's: its masked form only.
    hidden_fields = ("stream_key",)
    extra_readonly = ("stream_key_masked",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("stream_key")

    @admin.display(description="stream key")
    def stream_key_masked(self, obj):
        return obj.masked_stream_key or "—"


@admin.register(PastMeeting)
class PastMeetingAdmin(ReadOnlyAdmin):
    list_display = (
        "uuid",
        "zoom_id",
        "topic",
        "user_email",
        "start_time",
        "end_time",
        "participants_count",
        "fetched_at",
    )
    list_filter = ("account",)
    search_fields = ("topic", "user_email", "=zoom_id", "=uuid")
    date_hierarchy = "start_time"
    list_select_related = ("account", "meeting")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "event", "object_id", "account", "processed_at", "error")
    list_filter = ("event", "account", ("processed_at", admin.EmptyFieldListFilter))
    search_fields = ("=object_id", "=object_uuid", "event")
    date_hierarchy = "received_at"
    list_select_related = ("account",)
    hidden_fields = ("payload",)
    extra_readonly = ("payload_pretty",)

    @admin.display(description="payload (stream keys removed)")
    def payload_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))
