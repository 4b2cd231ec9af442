"""The audit trail in the admin: read-only, searchable, exportable.

Supervisors answer from here who did what, when, from where, what Zoom said and whether it
worked. Nothing can be added, changed or deleted (only `manage.py prune_actions` deletes, by the
retention policy); the encrypted parameters and the lease token are never shown.
"""

import csv
import json
from datetime import UTC

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .. import access
from ..models import Action, Attempt, Batch, ZoomAccount
from .guards import SafeChangeList
from .scope import AccountScopedAdmin

HIDDEN_ACTION_FIELDS = ("secret_params", "lease_token")
ANSWER_LENGTH = 120  # characters of Zoom's answer in the list; the whole of it is on the page

CSV_COLUMNS = (
    ("id", lambda a: a.pk),
    ("requested_at", lambda a: _iso(a.requested_at)),
    ("requested_by", lambda a: a.requested_by.get_username() if a.requested_by else ""),
    ("source", lambda a: a.source),
    ("os_user", lambda a: a.os_user),
    ("client_ip", lambda a: a.client_ip or ""),
    ("account", lambda a: a.account.name),
    ("kind", lambda a: a.kind),
    ("target_type", lambda a: a.target_type),
    ("target_id", lambda a: a.target_id or ""),
    ("target_uuid", lambda a: a.target_uuid),
    ("topic", lambda a: a.topic),
    ("state", lambda a: a.state),
    ("started_at", lambda a: _iso(a.started_at)),
    ("finished_at", lambda a: _iso(a.finished_at)),
    ("duration_s", lambda a: f"{a.duration.total_seconds():.3f}" if a.duration else ""),
    ("attempts", lambda a: a.attempts_count),
    ("http_status", lambda a: a.http_status or ""),
    ("zoom_code", lambda a: "" if a.zoom_code is None else a.zoom_code),
    ("result_summary", lambda a: a.result_summary),
    ("batch", lambda a: a.batch_id or ""),
    ("celery_task_id", lambda a: a.celery_task_id),
)


def _iso(value):
    # UTC whatever zone the reader's pages use: an export is read by other people and tools.
    return value.astimezone(UTC).isoformat() if value else ""


def _csv_cell(value):
    """A cell a spreadsheet will not run: topics come from Zoom users and may start with `=`."""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


class _Echo:
    def write(self, value):
        return value


class CsvExportAdmin:
    """ModelAdmin mixin: `export.csv` beside the changelist, streaming its rows (same filters,
    search, date drill-down and order) as CSV, linked from the list as `export_url`.

    A subclass names `csv_url_name`, `csv_filename` and `csv_list_words` (the list, in the
    message for invalid filters), and gives `csv_columns(request)`: (header, value(row)) pairs;
    `csv_related` is what the rows select_related."""

    csv_related = ()

    def get_urls(self):
        export = path(
            "export.csv", self.admin_site.admin_view(self.export_csv), name=self.csv_url_name
        )
        return [export, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "export_url": reverse(f"admin:{self.csv_url_name}"),
        }
        return super().changelist_view(request, extra_context)

    def export_csv(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            queryset = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(
                f"Those filters are not valid for the {self.csv_list_words}."
            )
        queryset = queryset.select_related(*self.csv_related)
        columns = self.csv_columns(request)
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow([name for name, _ in columns])
            for row in queryset.iterator(chunk_size=500):
                yield writer.writerow([_csv_cell(value(row)) for _, value in columns])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.csv_filename}"'
        return response


def _duration(action):
    if action.duration is None:
        return "—"
    seconds = action.duration.total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = readonly_fields = (
        "number",
        "operation",
        "started_at",
        "duration_ms",
        "outcome",
        "http_status",
        "zoom_code",
        "message",
        "waited",
        "reclaimed",
    )
    ordering = ("number",)

    @admin.display(description="after reclaim")
    def reclaimed(self, obj):
        # The boolean's icon put a red cross on every ordinary attempt, read as "failed".
        return "yes" if obj.after_reclaim else "—"

    @admin.display(description="waited before retrying")
    def waited(self, obj):
        # The stored float ("0.812152068056158") is exact for the pipeline, noise for a reader.
        return "—" if obj.retry_after is None else f"{obj.retry_after:.1f} s"


class NeverDeleted:
    """An audit model's delete page, as the admin's own page: audit records are never deleted.
    (Django's 403 for a refused delete is the dashboard's "ask an administrator for the
    permission", which no administrator can give.)"""

    def delete_view(self, request, object_id, extra_context=None):
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "list_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        }
        return TemplateResponse(request, "admin/meetings/never_deleted.html", context, status=403)


@admin.register(Action)
class ActionAdmin(
    CsvExportAdmin, NeverDeleted, AccountScopedAdmin, SafeChangeList, admin.ModelAdmin
):
    # What happened is one column (Zoom's answer with its HTTP status and code): the eleven
    # columns this list had ran past the right edge at 1280 px, and the answer was not among them.
    list_display = (
        "requested_at",
        "who",
        "kind",
        "target",
        "state_badge",
        "answer",
        "attempts_count",
        "source",
        "account",
    )
    list_display_links = ("requested_at", "kind")
    list_filter = (
        "state",
        "kind",
        "account",
        ("requested_by", admin.RelatedOnlyFieldListFilter),
        "source",
    )
    date_hierarchy = "requested_at"
    search_fields = ("topic", "requested_by__username", "target_uuid", "result_summary")
    search_help_text = "Topic, meeting or webinar id, instance UUID, username or Zoom's answer."
    list_select_related = ("account", "requested_by")
    list_per_page = 100
    inlines = (AttemptInline,)
    change_list_template = "admin/meetings/action/change_list.html"
    fieldsets = (
        (
            "What",
            {"fields": ("kind", "account", "target_type", "target_id", "target_uuid", "topic")},
        ),
        (
            "Asked",
            {
                "fields": (
                    "requested_by",
                    "os_user",
                    "requested_at",
                    "source",
                    "rule_display",
                    "client_ip",
                    "params_pretty",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "state",
                    "result_summary",
                    "http_status",
                    "zoom_code",
                    "started_at",
                    "finished_at",
                    "duration_display",
                    "attempts_count",
                    "result_pretty",
                )
            },
        ),
        (
            "Second person",
            {"fields": ("approval_requested", "approval_decided")},
        ),
        (
            "Machinery",
            {
                "classes": ("collapse",),
                "fields": ("celery_task_id", "lease_expires_at", "reclaims", "batch"),
            },
        ),
    )

    def get_list_display(self, request):
        # With one Zoom account (most organisations) its name on every row says nothing.
        if ZoomAccount.objects.count() > 1:
            return self.list_display
        return tuple(name for name in self.list_display if name != "account")

    def get_fieldsets(self, request, obj=None):
        # Where a request came from is for admins and whom they allow (issue 15), not viewers.
        if access.sees_client_addresses(request.user):
            return self.fieldsets
        return [
            (name, {**options, "fields": tuple(f for f in options["fields"] if f != "client_ip")})
            for name, options in self.fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        hidden = HIDDEN_ACTION_FIELDS
        if not access.sees_client_addresses(request.user):
            hidden = (*hidden, "client_ip")
        fields = [f.name for f in Action._meta.fields if f.name not in hidden]
        return [
            *fields,
            "params_pretty",
            "result_pretty",
            "duration_display",
            "rule_display",
            "approval_requested",
            "approval_decided",
        ]

    # Read-only: the audit trail is written by the pipeline alone.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        filtered = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Meeting ids are numbers: an exact match on the id, alongside the text search (within
        # the list filters already applied).
        ids = [int(t) for t in search_term.split() if t.isascii() and t.isdigit() and len(t) < 19]
        if ids:
            queryset |= filtered.filter(Q(target_id__in=ids) | Q(pk__in=ids))
        return queryset, may_have_duplicates

    def _approval(self, obj):
        from ..approvals import approval_of

        if not hasattr(obj, "_approval_row"):
            obj._approval_row = approval_of(obj)
        return obj._approval_row

    @admin.display(description="approval asked by")
    def approval_requested(self, obj):
        approval = self._approval(obj)
        if approval is None:
            return "Not needed"
        who = approval.requested_by.get_username() if approval.requested_by else "—"
        url = reverse("admin:meetings_approval_change", args=[approval.pk])
        return format_html(
            '<a href="{}">{}</a> at {:%Y-%m-%d %H:%M:%S %Z}', url, who, approval.requested_at
        )

    @admin.display(description="approved or rejected by")
    def approval_decided(self, obj):
        approval = self._approval(obj)
        if approval is None:
            return "—"
        if approval.decided_at is None:
            return approval.get_state_display()
        who = approval.decided_by.get_username() if approval.decided_by else "nobody"
        return (
            f"{approval.get_state_display()}: {who} at {approval.decided_at:%Y-%m-%d %H:%M:%S %Z}"
        )

    @admin.display(description="who", ordering="requested_by__username")
    def who(self, obj):
        if obj.rule_type:
            # An automatic action: which rule made it ("Scheduled by alice for 7 Dec 17:30").
            return f"({obj.get_source_display()}) {obj.rule_words}"
        who = (
            obj.requested_by.get_username() if obj.requested_by else f"({obj.get_source_display()})"
        )
        # zoomctl: the server's user who ran it, beside the user it acted as.
        return f"{who} (server user {obj.os_user})" if obj.os_user else who

    @admin.display(description="made by rule")
    def rule_display(self, obj):
        return obj.rule_words or "—"

    @admin.display(description="target")
    def target(self, obj):
        return obj.target_label

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return format_html(
            '<span class="action-state-{}">{}</span>', obj.state, obj.get_state_display()
        )

    @admin.display(description="Zoom's answer")
    def answer(self, obj):
        codes = []
        if obj.http_status:
            codes.append(f"HTTP {obj.http_status}")
        if obj.zoom_code is not None and obj.zoom_code != obj.http_status:
            codes.append(f"code {obj.zoom_code}")
        summary = obj.result_summary or ""
        short = summary if len(summary) <= ANSWER_LENGTH else summary[: ANSWER_LENGTH - 1] + "…"
        text = ": ".join(part for part in (" · ".join(codes), short) if part) or "—"
        return format_html('<span title="{}">{}</span>', summary, text)

    @admin.display(description="duration")
    def duration_display(self, obj):
        return _duration(obj)

    @admin.display(description="parameters")
    def params_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.params, indent=2, ensure_ascii=False))

    @admin.display(description="result details")
    def result_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.result, indent=2, ensure_ascii=False))

    # --- CSV export of the filtered list (CsvExportAdmin) --------------------------------------

    csv_url_name = "meetings_action_export"
    csv_filename = "zoom-actions.csv"
    csv_list_words = "action list"
    csv_related = ("account", "requested_by")

    def csv_columns(self, request):
        if access.sees_client_addresses(request.user):
            return CSV_COLUMNS
        return tuple(c for c in CSV_COLUMNS if c[0] != "client_ip")


class BatchActionInline(ReadOnlyInline):
    model = Action
    fk_name = "batch"
    fields = readonly_fields = (
        "action_link",
        "target_id",
        "topic",
        "state",
        "result_summary",
        "attempts_count",
        "finished_at",
    )
    ordering = ("id",)

    @admin.display(description="action")
    def action_link(self, obj):
        url = reverse("admin:meetings_action_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)


@admin.register(Batch)
class BatchAdmin(NeverDeleted, AccountScopedAdmin, SafeChangeList, admin.ModelAdmin):
    list_display = (
        "created",
        "kind",
        "account",
        "requested_by",
        "total",
        "progress",
        "cancelled_at",
    )
    list_filter = ("kind", "account")
    date_hierarchy = "created"
    list_select_related = ("account", "requested_by")
    readonly_fields = (
        "kind",
        "account",
        "requested_by",
        "created",
        "cancelled_at",
        "total",
        "progress",
    )
    fields = readonly_fields
    inlines = (BatchActionInline,)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress(self, obj):
        p = obj.progress()
        return (
            f"{p['done']}/{p['total']} done: {p['succeeded']} succeeded, {p['failed']} failed, "
            f"{p['cancelled']} cancelled, {p['running']} running, {p['queued']} queued"
        )
