"""The live stream panel that a meeting's page and a webinar's page share
(templates/meetings/_livestream.html): what it shows, what it offers, applying a stream preset,
and its four views (configure, apply a preset, start, stop), made for each page by
`stream_views` from what differs: how the page finds its object, asks for an action, refuses,
and answers a form with errors (meetings/views/meeting.py, webinars.py)."""

from collections.abc import Callable
from dataclasses import dataclass

from django.views.decorators.http import require_http_methods, require_POST

from ..forms import LiveStreamConfigForm, LiveStreamStartForm
from ..models import ActionKind, MeetingStatus, StreamPreset
from ..presets import configure_params, presets_for
from . import follow
from .access import dashboard_view, require_action_permission

# Configure, start, stop: the kinds of each target type.
STREAM_KINDS = {
    "meeting": (
        ActionKind.UPDATE_LIVESTREAM,
        ActionKind.START_LIVESTREAM,
        ActionKind.STOP_LIVESTREAM,
    ),
    "webinar": (
        ActionKind.UPDATE_WEBINAR_LIVESTREAM,
        ActionKind.START_WEBINAR_LIVESTREAM,
        ActionKind.STOP_WEBINAR_LIVESTREAM,
    ),
}


def start_unavailable_reason(obj, what="meeting"):
    """Why Start is not offered (the live stream preflight), or "" when it is: the first reason
    that applies, in the order an operator would fix them (a meeting not live makes the stream's
    settings beside the point)."""
    if obj.livestream_status == "live":
        return "The stream is already live."
    if obj.status != MeetingStatus.STARTED:
        return f"The {what} is not live, and Zoom streams only a {what} in progress."
    if not obj.has_stream_configured:
        return "No stream is configured yet. Save a stream URL, key and page URL first."
    if not obj.stream_key:
        # Zoom's own settings may carry a URL and page without a key (a stream set up in Zoom's
        # web portal): the panel shows them, so "nothing configured" would contradict it.
        return "The stream has no key. Save the stream key your streaming service gave you."
    return ""


def configured_with(actions, what):
    """The newest succeeded configuration among ACTIONS (the timeline's, newest first): the panel
    names the preset it came from."""
    configure = STREAM_KINDS[what][0]
    return next((a for a in actions if a.kind == configure and a.state == "succeeded"), None)


def panel_context(obj, what, *, kinds, stream_job, started_with):
    """What the panel's followed parts need beside its forms."""
    configure, start, _ = STREAM_KINDS[what]
    can_stream = start in kinds
    return {
        "can_stream": can_stream,
        "stream_job": stream_job,
        "stream_busy": bool(stream_job and stream_job.is_active),
        "started_with": started_with,
        "start_unavailable": start_unavailable_reason(obj, what),
        # Names only (the key is deferred, never read for a page). One query.
        "presets": list(presets_for(obj.account_id).only("pk", "name", "stream_url"))
        if can_stream and configure in kinds
        else [],
    }


def panel_version(obj, context):
    """The livestream part's version: what it shows (the key as shown, masked, never in clear)."""
    return (
        obj.status,
        obj.livestream_status,
        obj.stream_url,
        obj.page_url,
        obj.resolution,
        obj.masked_stream_key,
        follow.job_shown(context["stream_job"]),
        follow.job_shown(context["started_with"]),
        follow.job_shown(context.get("configured_with")),
        context["can_stream"],
        [(p.pk, p.name, p.stream_url) for p in context["presets"]],
    )


def chosen_preset(request, obj):
    """The preset posted for OBJ's connection, or None with the reason for the operator."""
    value = request.POST.get("preset", "").strip()
    if not value.isdigit() or not 0 < int(value) < 2**63:
        return None, "Choose a stream preset."
    preset = StreamPreset.objects.filter(pk=int(value), account_id=obj.account_id).first()
    if preset is None:
        return None, "That stream preset no longer exists for this connection: reload the page."
    return preset, ""


@dataclass(frozen=True)
class StreamPage:
    """What a page (a meeting's, a webinar's) gives the live stream views.

    get(request, pk): its object, or 404. request_action(request, obj, kind, forms=None,
    **extra): ask for KIND and answer with the panel (htmx) or a redirect; FORMS are the panel's
    forms as the answer shows them. refuse(request, obj, message): say no in the panel or as a
    message. form_answer(request, obj, **forms): the panel again with a form's errors.
    confirm_stop(request, obj): the stop's confirmation as a page."""

    what: str
    get: Callable
    request_action: Callable
    refuse: Callable
    form_answer: Callable
    confirm_stop: Callable


def _saved_form(obj, stream_url, page_url, resolution):
    """The configure form as the answer shows it: what was saved, never the key (the job's end
    refreshes only the panel's state, not its forms, so the mirror's old settings must not come
    back here)."""
    initial = {"stream_url": stream_url, "page_url": page_url, "resolution": resolution}
    return LiveStreamConfigForm(meeting=obj, initial=initial)


def stream_views(page):
    """PAGE's (a StreamPage) four live stream views: (update, apply_preset, start, stop)."""
    configure, start, stop = STREAM_KINDS[page.what]

    @dashboard_view
    @require_POST
    def update_livestream(request, pk):
        obj = page.get(request, pk)
        require_action_permission(request.user, configure, obj.account)
        form = LiveStreamConfigForm(request.POST, meeting=obj)
        if not form.is_valid():
            return page.form_answer(request, obj, config_form=form)
        data = form.cleaned_data
        saved = _saved_form(obj, data["stream_url"], data["page_url"], data["resolution"])
        return page.request_action(
            request, obj, configure, forms={"config_form": saved}, params=form.action_params()
        )

    @dashboard_view
    @require_POST
    def apply_preset(request, pk):
        """Configure the stream from a saved preset: one configure action whose parameters
        record the preset (meetings/presets.py)."""
        obj = page.get(request, pk)
        require_action_permission(request.user, configure, obj.account)
        preset, problem = chosen_preset(request, obj)
        if not problem and obj.livestream_status == "live":
            problem = "The stream is live: stop it before applying a preset."
        if problem:
            return page.refuse(request, obj, problem)
        saved = _saved_form(obj, preset.stream_url, preset.page_url, preset.resolution)
        return page.request_action(
            request, obj, configure, forms={"config_form": saved}, params=configure_params(preset)
        )

    @dashboard_view
    @require_POST
    def start_livestream(request, pk):
        obj = page.get(request, pk)
        require_action_permission(request.user, start, obj.account)
        form = LiveStreamStartForm(request.POST)
        valid = form.is_valid()
        reason = start_unavailable_reason(obj, page.what)
        if reason:
            form.add_error(None, reason)
        if not valid or reason:
            return page.form_answer(request, obj, start_form=form)
        return page.request_action(request, obj, start, params=form.action_params())

    @dashboard_view
    @require_http_methods(["GET", "POST"])
    def stop_livestream(request, pk):
        obj = page.get(request, pk)
        require_action_permission(request.user, stop, obj.account)
        if request.method == "GET":
            return page.confirm_stop(request, obj)
        return page.request_action(request, obj, stop)

    return update_livestream, apply_preset, start_livestream, stop_livestream
