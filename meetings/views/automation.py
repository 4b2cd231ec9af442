"""Scheduled and automatic actions on the pages: a meeting's or webinar's "Scheduled" panel
(schedule, edit, cancel; "when it starts, stream with preset…") and a connection's policies
(the preview for everyone who may see the dashboard, the switches for admins).

The panel is an include of both pages (meetings/_automation.html) and answers htmx with itself;
every form works as a plain POST with a redirect too."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import automation, policies
from ..forms_automation import PolicyForm, ScheduleForm, TriggerForm
from ..models import (
    Meeting,
    Policy,
    ScheduledAction,
    Step,
    StreamPreset,
    Trigger,
    Webinar,
    ZoomAccount,
)
from .access import allowed_kinds, dashboard_view, get_visible, wants_fragment
from .connections import can_manage_connections

PANEL = "meetings/_automation.html"
MODELS = {"meeting": Meeting, "webinar": Webinar}
# Recent finished schedules shown under the waiting ones.
RECENT = 10


def _target(request, target_type, pk):
    """The meeting or webinar, if of a connection this user may see; else 404."""
    return get_visible(MODELS[target_type].objects.select_related("account"), request.user, pk=pk)


def _allowed_steps(user, account, target_type):
    kinds = allowed_kinds(user, account)
    return [
        s
        for s in automation.available_steps(target_type)
        if automation.step_kind(target_type, s) in kinds
    ]


def _require_steps(user, account, target_type, steps):
    allowed = _allowed_steps(user, account, target_type)
    for step in steps:
        if step not in allowed:
            raise PermissionDenied(f"You are not allowed to schedule this: {Step(step).label}.")


def panel_context(request, target, target_type, *, schedule_form=None, trigger_form=None):
    """What the "Scheduled" panel shows: waiting schedules (each editable, cancellable), the
    latest finished ones with their outcome, the trigger(s) and the forms."""
    rows = ScheduledAction.objects.filter(
        account_id=target.account_id, target_type=target_type, target_id=target.zoom_id
    ).select_related("created_by")
    allowed = _allowed_steps(request.user, target.account, target_type)
    start_kind = automation.step_kind(target_type, Step.START_STREAM)
    can_trigger = start_kind is not None and start_kind in allowed_kinds(
        request.user, target.account
    )
    presets = StreamPreset.objects.filter(account_id=target.account_id)
    return {
        "target": target,
        "target_type": target_type,
        "waiting": list(rows.filter(state=ScheduledAction.State.PENDING).order_by("run_at")),
        "recent": list(
            rows.exclude(state=ScheduledAction.State.PENDING).order_by("-run_at")[:RECENT]
        ),
        "can_schedule": bool([s for s in allowed if s != Step.CONFIGURE_STREAM]),
        "schedule_form": schedule_form
        or ScheduleForm(target_type=target_type, allowed=allowed, prefix="schedule"),
        "can_trigger": can_trigger,
        "triggers": list(
            Trigger.objects.filter(
                account_id=target.account_id, target_type=target_type, target_id=target.zoom_id
            ).select_related("preset", "created_by")
        ),
        "connection_triggers": Trigger.objects.filter(
            account_id=target.account_id,
            target_type=target_type,
            target_id__isnull=True,
            enabled=True,
        ).count(),
        "has_presets": presets.exists(),
        "trigger_form": trigger_form or TriggerForm(account=target.account, prefix="trigger"),
        "panel_url": reverse(f"{target_type}-automation", args=[target.pk]),
        "grace_minutes": max(1, round(settings.SCHEDULE_GRACE_SECONDS / 60)),
    }


def _answer(request, target, target_type, *, status=200, notice="", error="", **forms):
    """The panel again (htmx), saying what happened; or a redirect to the page with it."""
    if wants_fragment(request):
        context = panel_context(request, target, target_type, **forms)
        context["notice"] = notice
        context["refused"] = error
        return render(request, PANEL, context, status=status)
    if notice:
        messages.success(request, notice)
    if error:
        messages.error(request, error)
    if status != 200:
        for form in forms.values():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
    return redirect(target_type, pk=target.pk)


@dashboard_view
@require_http_methods(["GET", "POST"])
def automation_panel(request, pk, target_type):
    """GET: the panel alone (htmx). POST: a new schedule."""
    target = _target(request, target_type, pk)
    if request.method == "GET":
        if not wants_fragment(request):
            return redirect(target_type, pk=target.pk)
        return render(request, PANEL, panel_context(request, target, target_type))
    allowed = _allowed_steps(request.user, target.account, target_type)
    if not allowed:
        raise PermissionDenied("You are not allowed to schedule actions.")
    form = ScheduleForm(request.POST, target_type=target_type, allowed=allowed, prefix="schedule")
    if not form.is_valid():
        return _answer(request, target, target_type, status=400, schedule_form=form)
    _require_steps(request.user, target.account, target_type, form.cleaned_data["steps"])
    sched = automation.schedule(
        account=target.account,
        target_type=target_type,
        target_id=target.zoom_id,
        topic=target.topic,
        steps=form.step_list(),
        run_at=form.cleaned_data["run_at"],
        user=request.user,
    )
    return _answer(request, target, target_type, notice=f"Scheduled: {sched.steps_words()}.")


def _schedule_for(request, pk):
    sched = get_visible(ScheduledAction.objects.all(), request.user, pk=pk)
    target = get_object_or_404(
        MODELS[sched.target_type].objects.select_related("account"),
        account_id=sched.account_id,
        zoom_id=sched.target_id,
    )
    _require_steps(
        request.user, target.account, sched.target_type, [s["step"] for s in sched.steps]
    )
    return sched, target


@dashboard_view
@require_http_methods(["GET", "POST"])
def edit_schedule(request, pk):
    sched, target = _schedule_for(request, pk)
    allowed = _allowed_steps(request.user, target.account, sched.target_type)
    if request.method == "POST":
        form = ScheduleForm(
            request.POST, target_type=sched.target_type, allowed=allowed, prefix="schedule"
        )
        if form.is_valid():
            _require_steps(
                request.user, target.account, sched.target_type, form.cleaned_data["steps"]
            )
            if automation.edit_schedule(
                sched, run_at=form.cleaned_data["run_at"], steps=form.step_list()
            ):
                messages.success(request, "Schedule changed.")
            else:
                messages.error(
                    request,
                    f"It can no longer be changed: it is {sched.get_state_display().lower()}.",
                )
            return redirect(sched.target_type, pk=target.pk)
    else:
        form = ScheduleForm(
            target_type=sched.target_type,
            allowed=allowed,
            prefix="schedule",
            initial={"run_at": sched.run_at, "steps": [s["step"] for s in sched.steps]},
        )
    return render(
        request,
        "meetings/schedule_edit.html",
        {"sched": sched, "target": target, "form": form},
        status=400 if form.errors else 200,
    )


@dashboard_view
@require_POST
def cancel_schedule(request, pk):
    sched, target = _schedule_for(request, pk)
    if automation.cancel_schedule(sched, user=request.user):
        return _answer(
            request, target, sched.target_type, notice=f"Cancelled: {sched.steps_words()}."
        )
    return _answer(
        request,
        target,
        sched.target_type,
        error=f"It can no longer be cancelled: it is {sched.get_state_display().lower()}.",
    )


@dashboard_view
@require_POST
def add_trigger(request, pk, target_type):
    target = _target(request, target_type, pk)
    start_kind = automation.step_kind(target_type, Step.START_STREAM)
    if start_kind is None:
        raise PermissionDenied(f"A {target_type}'s live stream cannot be started from here yet.")
    if start_kind not in allowed_kinds(request.user, target.account):
        raise PermissionDenied("You are not allowed to start live streams.")
    form = TriggerForm(request.POST, account=target.account, prefix="trigger")
    if not form.is_valid():
        return _answer(request, target, target_type, status=400, trigger_form=form)
    Trigger.objects.create(
        account=target.account,
        target_type=target_type,
        target_id=target.zoom_id,
        topic=target.topic[:300],
        preset=form.cleaned_data["preset"],
        active_speaker_name=form.cleaned_data["active_speaker_name"],
        display_name=form.cleaned_data["display_name"],
        created_by=request.user,
    )
    preset = form.cleaned_data["preset"].name
    return _answer(
        request, target, target_type, notice=f"When it starts, its stream starts with “{preset}”."
    )


@dashboard_view
@require_POST
def remove_trigger(request, pk):
    trigger = get_visible(Trigger.objects.all(), request.user, pk=pk, target_id__isnull=False)
    start_kind = automation.step_kind(trigger.target_type, Step.START_STREAM)
    if start_kind not in allowed_kinds(request.user, trigger.account_id):
        raise PermissionDenied("You are not allowed to start live streams.")
    target = get_object_or_404(
        MODELS[trigger.target_type].objects.select_related("account"),
        account_id=trigger.account_id,
        zoom_id=trigger.target_id,
    )
    # Off, not deleted: the actions it made name it.
    Trigger.objects.filter(pk=trigger.pk).update(enabled=False)
    return _answer(
        request,
        target,
        trigger.target_type,
        notice="Turned off: the stream no longer starts by itself.",
    )


# --- Policies -----------------------------------------------------------------------------------


@dashboard_view
@require_GET
def policies_page(request, pk):
    account = get_visible(ZoomAccount.objects.all(), request.user, pk=pk)
    rows = policies.policies_for(account)
    can_edit = can_manage_connections(request.user)
    return render(
        request,
        "meetings/policies.html",
        {
            "account": account,
            "policies": [
                {
                    "policy": p,
                    "plan": policies.plan_policy(p),
                    "form": PolicyForm(instance=p, prefix=f"p{p.pk}") if can_edit else None,
                }
                for p in rows
            ],
            "can_edit": can_edit,
        },
    )


@dashboard_view
@require_POST
def edit_policy(request, pk):
    if not can_manage_connections(request.user):
        raise PermissionDenied("Only administrators change policies.")
    policy = get_visible(Policy.objects.all(), request.user, pk=pk)
    form = PolicyForm(request.POST, instance=policy, prefix=f"p{policy.pk}")
    if form.is_valid():
        policy = form.save(commit=False)
        policy.updated_by = request.user
        from django.utils.timezone import now

        policy.updated = now()
        policy.save()
        messages.success(request, f"{policy.words()}: {'on' if policy.enabled else 'off'}.")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("connection-policies", pk=policy.account_id)


urlpatterns = [
    path(
        "meetings/<int:pk>/scheduled/",
        automation_panel,
        {"target_type": "meeting"},
        name="meeting-automation",
    ),
    path(
        "webinars/<int:pk>/scheduled/",
        automation_panel,
        {"target_type": "webinar"},
        name="webinar-automation",
    ),
    path(
        "meetings/<int:pk>/triggers/",
        add_trigger,
        {"target_type": "meeting"},
        name="meeting-trigger-add",
    ),
    path(
        "webinars/<int:pk>/triggers/",
        add_trigger,
        {"target_type": "webinar"},
        name="webinar-trigger-add",
    ),
    path("triggers/<int:pk>/remove/", remove_trigger, name="trigger-remove"),
    path("schedules/<int:pk>/edit/", edit_schedule, name="schedule-edit"),
    path("schedules/<int:pk>/cancel/", cancel_schedule, name="schedule-cancel"),
    path("connections/<int:pk>/policies/", policies_page, name="connection-policies"),
    path("policies/<int:pk>/", edit_policy, name="policy-edit"),
]
