"""The domain: connected Zoom accounts, the mirror of their meetings, and the audit trail."""

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
from .ratelimit import RateLimitBucket
from .users import ZoomUser
from .webhooks import WebhookEvent

__all__ = [
    "Action",
    "ActionKind",
    "ActionSource",
    "ActionState",
    "Attempt",
    "Batch",
    "KeyHolder",
    "LiveStreamStatus",
    "Meeting",
    "MeetingStatus",
    "MirrorLock",
    "PastMeeting",
    "PastParticipant",
    "Plan",
    "RateLimitBucket",
    "UserPreferences",
    "WebhookEvent",
    "Webinar",
    "WorkerHeartbeat",
    "ZoomAccount",
    "ZoomUser",
]
