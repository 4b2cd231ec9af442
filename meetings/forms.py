"""The dashboard's forms. They validate like Zoom does (limits from the OpenAPI spec), so an
operator learns about a bad value from the form, not from a failed job a second later."""

import datetime as dt

from allauth.account.forms import LoginForm
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db.models import Q
from django.utils import timezone

from .models import ActionKind, ActionState, MeetingStatus
from .models.actions import ActionSource
from .models.mirror import Resolution
from .timezones import zone_names

# PATCH /meetings/{meetingId}/livestream: stream_url <= 1024, stream_key <= 512, page_url a
# "uri" <= 1024; PATCH .../livestream/status: settings.display_name 1..50 characters.
STREAM_URL_MAX = 1024
STREAM_KEY_MAX = 512
PAGE_URL_MAX = 1024
DISPLAY_NAME_MAX = 50
STREAM_SCHEMES = ("rtmp", "rtmps", "http", "https")

# URLValidator checks host and port properly; it only needs to be told RTMP is a scheme too.
_stream_url_validator = URLValidator(
    schemes=list(STREAM_SCHEMES),
    message="Enter a stream URL starting with rtmp://, rtmps://, http:// or https://.",
)
_page_url_validator = URLValidator(
    schemes=["http", "https"], message="Enter a page URL starting with http:// or https://."
)


class FullLengthCharField(forms.CharField):
    """A CharField without the HTML maxlength attribute: a browser silently cuts a pasted value
    at maxlength, and the cut value (a stream URL missing its tail) then passes validation and
    goes to Zoom. The server-side limit stays, and its error says how long the value is."""

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        return attrs


class DashboardForm(forms.Form):
    """Labels without Django's trailing colon: the stylesheet sets labels apart already."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignInForm(LoginForm):
    """allauth's sign-in form (throttled, then the second factor) with the dashboard's labels
    ("Username", no colon), its field named `username` as before, and, after a wrong password,
    the cursor in the password box: the username is kept, and focus on it sent the next
    keystrokes into a field that was already right."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username"
        self.fields["login"].widget.attrs.pop("placeholder", None)
        self.fields["password"].widget.attrs.pop("placeholder", None)
        self.fields["password"].help_text = ""
        if self.is_bound:
            self.fields["login"].widget.attrs.pop("autofocus", None)
            self.fields["password"].widget.attrs["autofocus"] = True
        else:
            self.fields["login"].widget.attrs["autofocus"] = True

    def add_prefix(self, field_name):
        # allauth calls the field "login"; browsers' password managers and our tests know it as
        # "username".
        return "username" if field_name == "login" else super().add_prefix(field_name)


def _no_control_characters(value):
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError("Remove the line breaks or control characters.")


class LiveStreamConfigForm(DashboardForm):
    """Configure a meeting's custom live stream (Zoom: meetingLiveStreamUpdate).

    The key is a secret: it is never rendered back (not even after a validation error) and an
    empty key keeps the one already configured, so fixing a typo in the URL needs no key at hand.
    """

    stream_url = FullLengthCharField(
        label="Stream URL",
        max_length=STREAM_URL_MAX,
        validators=[_stream_url_validator],
        help_text="Where Zoom sends the stream: rtmp://, rtmps://, http:// or https://.",
        widget=forms.TextInput(
            attrs={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    stream_key = FullLengthCharField(
        label="Stream key",
        max_length=STREAM_KEY_MAX,
        required=False,
        strip=False,
        validators=[_no_control_characters],
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}
        ),
    )
    page_url = FullLengthCharField(
        label="Live stream page URL",
        max_length=PAGE_URL_MAX,
        validators=[_page_url_validator],
        help_text="The page where viewers watch: http:// or https://.",
        widget=forms.TextInput(
            attrs={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    resolution = forms.ChoiceField(
        label="Resolution", choices=Resolution.choices, required=False, initial=""
    )

    def __init__(self, *args, meeting=None, **kwargs):
        self.meeting = meeting
        if meeting is not None and not args and "data" not in kwargs:
            kwargs.setdefault(
                "initial",
                {
                    "stream_url": meeting.stream_url,
                    "page_url": meeting.page_url,
                    "resolution": meeting.resolution,
                },
            )
        super().__init__(*args, **kwargs)
        self.has_stored_key = bool(meeting is not None and meeting.stream_key)
        self.fields["stream_key"].help_text = (
            "A key is configured (not shown). Leave empty to keep it, or type a new one."
            if self.has_stored_key
            else "The stream name and key your streaming service gave you. It is never shown again."
        )

    def full_clean(self):
        super().full_clean()
        typed = self.is_bound and self.data.get("stream_key", "").strip()
        if typed and self.errors and "stream_key" not in self.errors:
            # The key is not rendered back, so the operator fixing the URL must know that the
            # key they typed is gone from the field, not find out from "Enter the stream key".
            # The bound field copied the help text when validation made it: set both.
            self.fields["stream_key"].help_text = self["stream_key"].help_text = (
                "The key you typed was not kept (a key is never sent back to the browser): "
                "type it again."
            )

    def clean_stream_key(self):
        key = self.cleaned_data["stream_key"]
        if not key.strip():
            if not self.has_stored_key:
                raise ValidationError("Enter the stream key.", code="required")
            return ""
        return key

    def clean(self):
        cleaned = super().clean()
        if self.meeting is not None and self.meeting.livestream_status == "live":
            raise ValidationError(
                "The stream is live: stop it before changing its settings (Zoom only accepts "
                "new settings for a stopped stream)."
            )
        return cleaned

    def action_params(self):
        """The parameters of the update_livestream action, the key in clear for the pipeline
        (which stores it encrypted and redacts it from the audit record)."""
        data = self.cleaned_data
        return {
            "stream_url": data["stream_url"],
            "stream_key": data["stream_key"] or self.meeting.stream_key,
            "page_url": data["page_url"],
            "resolution": data["resolution"] or None,
        }


class LiveStreamStartForm(DashboardForm):
    """Start a meeting's live stream with its settings (Zoom: meetingLiveStreamStatusUpdate)."""

    active_speaker_name = forms.BooleanField(
        label="Show the active speaker's name", required=False, initial=True
    )
    display_name = forms.CharField(
        label="Display name",
        required=False,
        # No maxlength attribute: a browser would silently cut a pasted name to 50 characters
        # and put the wrong name on a live broadcast; the form says what is wrong instead.
        validators=[_no_control_characters],
        help_text=f"Shown on the stream; 1–{DISPLAY_NAME_MAX} characters. Optional.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_display_name(self):
        name = self.cleaned_data["display_name"]
        if len(name) > DISPLAY_NAME_MAX:
            raise ValidationError(
                f"The display name can be at most {DISPLAY_NAME_MAX} characters "
                f"(it has {len(name)}).",
                code="max_length",
            )
        return name

    def action_params(self):
        data = self.cleaned_data
        return {
            "active_speaker_name": data["active_speaker_name"],
            "display_name": data["display_name"] or None,
        }


# A day at either end of the calendar has no next day, and its midnight in another time zone
# is outside what a datetime holds: such a date in a hand-edited URL was a 500 (found by
# tests/test_hostile_input.py). One day of margin covers every UTC offset.
_CALENDAR_RANGE = [
    MinValueValidator(dt.date.min + dt.timedelta(days=1)),
    MaxValueValidator(dt.date.max - dt.timedelta(days=1)),
]


def _local_day_start(day):
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class ListFilterForm(DashboardForm):
    """What list pages share: a search box, an account, a date range. Bad values are reported
    on the form and ignored, so a hand-edited URL shows the list rather than an error page."""

    # Full length: a browser cut a pasted longer search at maxlength and searched for the cut
    # text; the filter errors say the search is too long instead.
    q = FullLengthCharField(label="Search", required=False, max_length=200)
    account = forms.TypedChoiceField(
        label="Account", coerce=int, empty_value=None, required=False, choices=[("", "All")]
    )
    start_from = forms.DateField(
        label="From",
        required=False,
        validators=_CALENDAR_RANGE,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    start_to = forms.DateField(
        label="To",
        required=False,
        validators=_CALENDAR_RANGE,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, accounts=None, **kwargs):
        super().__init__(*args, **kwargs)
        if accounts is not None:
            # The view's list of accounts (one query), not a queryset evaluated again here.
            self.fields["account"].choices = [("", "All")] + [(a.pk, a.name) for a in accounts]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start_from"), cleaned.get("start_to")
        if start and end and start > end:
            self.add_error("start_to", "The end date is before the start date.")
        return cleaned

    def value(self, name):
        """The cleaned value of a field, or None when it is missing or invalid."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        if name in self.errors:
            return None
        return self.cleaned_data.get(name)

    def date_range(self):
        start, end = self.value("start_from"), self.value("start_to")
        if start and end and start > end:
            return None, None
        return (
            _local_day_start(start) if start else None,
            _local_day_start(end + dt.timedelta(days=1)) if end else None,
        )


# "Live first": the live ones (newest first), then the others (newest first). A list's parts
# (meetings/views/pagination.py); each is one range of the (status, start time) or start time
# index.
LIVE_FIRST = [Q(status=MeetingStatus.STARTED), ~Q(status=MeetingStatus.STARTED)]


class SortedByStartForm(ListFilterForm):
    """A list of meetings or webinars, live first unless another order is chosen: what is live
    is what an operator comes for, and newest first put meetings scheduled months ahead on top."""

    SORTS = {
        "live": ("start_time", True),
        "newest": ("start_time", True),
        "oldest": ("start_time", False),
        "topic": ("topic", False),
    }

    sort = forms.ChoiceField(
        label="Sort",
        required=False,
        choices=[
            ("live", "Live first, then newest"),
            ("newest", "Start time, newest first"),
            ("oldest", "Start time, oldest first"),
            ("topic", "Topic, A–Z"),
        ],
    )

    def ordering(self):
        return self.SORTS[self.value("sort") or "live"]

    def parts(self):
        """The list's parts (LIVE_FIRST) for the chosen sort, or None (one part)."""
        return LIVE_FIRST if (self.value("sort") or "live") == "live" else None


class MeetingFilterForm(SortedByStartForm):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any"), *MeetingStatus.choices]
    )
    type = forms.TypedChoiceField(
        label="Type",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[
            ("", "Any"),
            (2, "Scheduled"),
            (8, "Recurring, fixed time"),
            (3, "Recurring, no fixed time"),
            (1, "Instant"),
        ],
    )
    field_order = ["q", "status", "type", "account", "start_from", "start_to", "sort"]


class WebinarFilterForm(SortedByStartForm):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any"), *MeetingStatus.choices]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # By start time only: webinars have no (topic, id) index to page by topic along.
        self.fields["sort"].choices = [c for c in self.fields["sort"].choices if c[0] != "topic"]


class ActivityFilterForm(ListFilterForm):
    kind = forms.ChoiceField(
        label="Action", required=False, choices=[("", "Any"), *ActionKind.choices]
    )
    state = forms.ChoiceField(
        label="State", required=False, choices=[("", "Any"), *ActionState.choices]
    )
    source = forms.ChoiceField(
        label="Source", required=False, choices=[("", "Any"), *ActionSource.choices]
    )
    user = FullLengthCharField(label="User", required=False, max_length=150)

    field_order = ["q", "kind", "state", "account", "user", "source", "start_from", "start_to"]


BULK_KINDS = [
    (ActionKind.END_MEETING, "End meetings"),
    (ActionKind.STOP_LIVESTREAM, "Stop live streams"),
]
# The webinars list's: each kind acts on webinars (meetings.actions.TARGET_TYPES).
WEBINAR_BULK_KINDS = [
    (ActionKind.END_WEBINAR, "End webinars"),
    (ActionKind.START_WEBINAR_LIVESTREAM, "Start live streams"),
    (ActionKind.STOP_WEBINAR_LIVESTREAM, "Stop live streams"),
]
BULK_MAX = 500


class BulkForm(DashboardForm):
    """Which meetings or webinars (dashboard ids) and what to do with them: the kind says
    which of the two the ids are."""

    kind = forms.ChoiceField(label="Bulk action", choices=[*BULK_KINDS, *WEBINAR_BULK_KINDS])
    ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    # "Review all N in this list": the selection is everything the list shows (its search and
    # filters are in `back`), looked up by the review, which then names each one (ids).
    matching = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if not data.get("matching") and not data.get("ids") and "ids" not in self.errors:
            self.add_error("ids", "Select at least one meeting.")
        return data

    def clean_ids(self):
        ids = self.cleaned_data["ids"]
        if len(ids) > BULK_MAX:
            raise ValidationError(f"Select at most {BULK_MAX} meetings at a time.")
        if any(not 0 < i < 2**63 for i in ids):
            raise ValidationError("That selection is not valid: reload the list and try again.")
        return list(dict.fromkeys(ids))

    def full_clean(self):
        # Any integer is a valid choice here; whether it is a meeting is checked by the view.
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(v, v) for v in raw]
        super().full_clean()


class PreferencesForm(DashboardForm):
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Times on every page are shown in this zone, with UTC when you point at them.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
            ("", "Your browser's time zone"),
            *((name, name) for name in zone_names()),
        ]
