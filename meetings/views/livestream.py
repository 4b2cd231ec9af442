"""The live stream panel that a meeting's page and a webinar's page share
(templates/meetings/_livestream.html): what it shows, what it offers, and applying a stream
preset. The pages' own modules make the requests (meetings/views/meeting.py, webinars.py)."""

from ..models import ActionKind, MeetingStatus, StreamPreset
from ..presets import presets_for
from . import follow

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
