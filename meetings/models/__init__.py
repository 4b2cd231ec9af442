"""The domain: connected Zoom accounts, the mirror of their meetings, and the audit trail."""

from .access import AccessEvent, ConnectionGrant, Role, record_access
from .accounts import Plan, ZoomAccount
from .actions import Action, ActionKind, ActionSource, ActionState, Attempt, Batch
from .approvals import Approval, ApprovalSettings, ApprovalState
from .automation import Policy, RuleType, ScheduledAction, Step, Trigger, TriggerFiring
from .mirror import (
    LiveStreamStatus,
    Meeting,
    MeetingStatus,
    MirrorLock,
    PastMeeting,
    PastParticipant,
    Webinar,
)
from .notifications import Channel, Delivery, DeliveryState, DestinationSlot, Subscription
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
    "Approval",
    "ApprovalSettings",
    "ApprovalState",
    "Attempt",
    "Batch",
    "Channel",
    "ConnectionGrant",
    "Delivery",
    "DeliveryState",
    "DestinationSlot",
    "KeyHolder",
    "LiveStreamStatus",
    "Meeting",
    "MeetingStatus",
    "MirrorLock",
    "PastMeeting",
    "PastParticipant",
    "Plan",
    "Policy",
    "RateLimitBucket",
    "Role",
    "RuleType",
    "ScheduledAction",
    "Step",
    "StreamPreset",
    "Subscription",
    "SyncPart",
    "SyncRun",
    "Trigger",
    "TriggerFiring",
    "UserPreferences",
    "WebhookEvent",
    "Webinar",
    "WorkerHeartbeat",
    "ZoomAccount",
    "ZoomUser",
    "record_access",
]
