"""The domain: connected Zoom accounts, the mirror of their meetings, and the audit trail."""

from .access import AccessEvent, ConnectionGrant, Role, record_access
from .accounts import Plan, ZoomAccount
from .actions import Action, ActionKind, ActionSource, ActionState, Attempt, Batch
from .mirror import (
    LiveStreamStatus,
    Meeting,
    MeetingStatus,
    MirrorLock,
    PastMeeting,
    PastParticipant,
    Webinar,
)
from .ops import KeyHolder, WorkerHeartbeat
from .preferences import UserPreferences
from .presets import StreamPreset
from .ratelimit import RateLimitBucket
from .syncs import SyncPart, SyncRun
from .users import ZoomUser
from .webhooks import WebhookEvent

__all__ = [
    "AccessEvent",
    "Action",
    "ActionKind",
    "ActionSource",
    "ActionState",
    "Attempt",
    "Batch",
    "ConnectionGrant",
    "KeyHolder",
    "LiveStreamStatus",
    "Meeting",
    "MeetingStatus",
    "MirrorLock",
    "PastMeeting",
    "PastParticipant",
    "Plan",
    "RateLimitBucket",
    "Role",
    "StreamPreset",
    "SyncPart",
    "SyncRun",
    "UserPreferences",
    "WebhookEvent",
    "Webinar",
    "WorkerHeartbeat",
    "ZoomAccount",
    "ZoomUser",
    "record_access",
]
