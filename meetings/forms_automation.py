"""The forms of scheduled and automatic actions: a schedule, a "when it starts" trigger, a
policy's switch. Times are typed in the person's own time zone (the page's: dashboard_view
activates it), stored in UTC."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from .automation import available_steps
from .forms import DashboardForm
from .models import Policy, Step, StreamPreset

# A schedule further ahead than this is more likely a typo in the year than a plan.
MAX_AHEAD = timedelta(days=366)
# A time typed a little in the past (the minute being typed) is taken as "now".
PAST_TOLERANCE = timedelta(minutes=1)
# What a person may schedule (configuring a stream is part of a trigger, not a step of its own).
SCHEDULABLE = (Step.START_STREAM, Step.STOP_STREAM, Step.END)


class ScheduleForm(DashboardForm):
    run_at = forms.DateTimeField(
        label="When",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter a date and time, such as 2026-12-07 17:30."},
    )
    steps = forms.MultipleChoiceField(
        label="What to do, in this order",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one thing to do."},
    )

    def __init__(self, *args, target_type="meeting", allowed=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.target_type = target_type
        words = {
            Step.START_STREAM: "Start the live stream (as configured)",
            Step.STOP_STREAM: "Stop the live stream",
            Step.END: f"End the {target_type}",
        }
        self.fields["steps"].choices = [
            (step.value, words[step])
            for step in available_steps(target_type)
            if step in SCHEDULABLE and (allowed is None or step in allowed)
        ]
        zone = timezone.get_current_timezone()
        self.fields["run_at"].help_text = f"In your time zone, {zone.key}."

    def clean_run_at(self):
        value = self.cleaned_data["run_at"]
        current = timezone.now()
        if value < current - PAST_TOLERANCE:
            raise forms.ValidationError("That time has passed. Choose a time still to come.")
        if value > current + MAX_AHEAD:
            raise forms.ValidationError("Choose a time within a year from now.")
        return value

    def clean_steps(self):
        chosen = set(self.cleaned_data["steps"])
        # Always in a sensible order whatever the boxes' order: start, stop, then end.
        return [s.value for s in SCHEDULABLE if s.value in chosen]

    def step_list(self):
        steps = []
        for step in self.cleaned_data["steps"]:
            params = {}
            if step == Step.START_STREAM:
                params = {"active_speaker_name": False, "display_name": None}
            steps.append({"step": step, "params": params})
        return steps


class TriggerForm(DashboardForm):
    preset = forms.ModelChoiceField(
        label="Stream preset",
        queryset=StreamPreset.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of this connection's stream presets."},
    )
    active_speaker_name = forms.BooleanField(label="Show the active speaker's name", required=False)
    # Zoom's limit for the display name of a live stream (livestream status, settings).
    display_name = forms.CharField(label="Display name", max_length=50, required=False)

    def __init__(self, *args, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["preset"].queryset = StreamPreset.objects.filter(account=account).only(
            "pk", "name", "account_id"
        )

    def clean_display_name(self):
        value = self.cleaned_data["display_name"].strip()
        if any(ord(c) < 32 for c in value):
            raise forms.ValidationError("The display name cannot hold control characters.")
        return value


class PolicyForm(forms.ModelForm):
    """A policy's switch and minutes (labels without Django's colon, as DashboardForm's)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    class Meta:
        model = Policy
        fields = ["enabled", "minutes"]
        labels = {"enabled": "On", "minutes": "Minutes after the scheduled end"}

    def clean_minutes(self):
        value = self.cleaned_data["minutes"]
        if value is None or not 1 <= value <= 24 * 60:
            raise forms.ValidationError("Enter between 1 and 1440 minutes.")
        return value
