"""Applying a stream preset (meetings.models.presets.StreamPreset) to a meeting or a webinar.

One click is one configure action whose parameters are a copy of the preset as it is at the
click: its id and name (recorded in the audit trail: which preset), its URLs and resolution, and
its key, which the pipeline stores encrypted in Action.secret_params and redacts from
Action.params as it does every stream key (meetings.actions). The worker uses that copy, never
the preset row: editing or deleting the preset afterwards changes no stream already configured
(nor one being configured).
"""

from .actions import CONFIGURE_KINDS, TARGET_TYPES
from .models import ActionKind, StreamPreset

CONFIGURE_KIND_FOR = {TARGET_TYPES[kind]: kind for kind in CONFIGURE_KINDS}


def presets_for(account):
    """The account's presets, by name, without their keys (a picker needs none)."""
    return StreamPreset.objects.filter(account=account).defer("stream_key").order_by("name")


def configure_params(preset):
    """The parameters of a configure action that applies PRESET, as it is now."""
    return {
        "stream_url": preset.stream_url,
        "stream_key": preset.stream_key,
        "page_url": preset.page_url,
        "resolution": preset.resolution or None,
        "preset_id": preset.pk,
        "preset_name": preset.name,
    }


def configure_kind(target_type):
    """The configure action's kind for a "meeting" or a "webinar"."""
    return ActionKind(CONFIGURE_KIND_FOR[target_type])
