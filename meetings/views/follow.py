"""Pages that follow Zoom while they are open: a meeting's and a webinar's.

Such a page is made of named parts (partials of its template) and carries the version of each,
a short digest of what the part shows. Its poller (meetings/_follow.html) asks the page's state
URL every few seconds with those versions; the answer is 204 when every part is still current,
else the parts that changed, as out-of-band swaps, and a poller with the new versions. A part
that did not change is not sent, so what the operator has in hand there (a focused button, a
selected join URL) stays. The forms' fields are in no part: what is being typed stays too.

The digest is of what a part shows, never of a secret (the stream key counts masked), and a
part that shows a relative time ("5 minutes ago") counts that text, so it is sent again when
the text would read differently.
"""

import hashlib
from itertools import chain

from django.http import HttpResponse
from django.shortcuts import render

from ..models import Action, WebhookEvent

TIMELINE_LENGTH = 30
# A version is one short digest a part, in the order of the page's parts, joined by "-".
SEPARATOR = "-"


def part_versions(shown):
    """{part: digest} for {part: what the part shows} (any repr-able values)."""
    return {
        part: hashlib.blake2s(repr(values).encode(), digest_size=5).hexdigest()
        for part, values in shown.items()
    }


def page_version(versions):
    """The version string the page carries in its poller's URL."""
    return SEPARATOR.join(versions.values())


def changed_parts(versions, shown_version):
    """The parts whose version differs from the page's; all of them when `shown_version` is
    not one this page's parts could have (an old page after a deploy, a hand-made URL)."""
    shown = (shown_version or "").split(SEPARATOR)
    if len(shown) != len(versions):
        return set(versions)
    return {part for (part, now), then in zip(versions.items(), shown, strict=True) if now != then}


def state_answer(request, template, context):
    """The poll's answer: 204 when the page is current, else the changed parts out of band.

    `context` has `part_versions`; the template's `state` partial renders the parts named in
    `changed`, and the poller with the new version."""
    changed = changed_parts(context["part_versions"], request.GET.get("v"))
    if not changed:
        return HttpResponse(status=204)
    return render(request, f"{template}#state", {**context, "changed": changed})


def timeline(account_id, zoom_id, kinds):
    """A meeting's or webinar's newest actions (of `kinds`) and the Zoom events about it, merged,
    newest first, as the timeline shows them; and the actions themselves (newest first, for the
    latest job of a kind). Two bounded queries, whatever the history."""
    actions = list(
        Action.objects.filter(account_id=account_id, target_id=zoom_id, kind__in=kinds)
        # The encrypted parameters are never shown: not decrypted thirty times a poll.
        .defer("secret_params")
        .with_people()[:TIMELINE_LENGTH]
    )
    events = list(
        WebhookEvent.objects.filter(object_id=zoom_id)
        .only("pk", "event", "received_at", "processed_at", "error", "object_uuid")
        .order_by("-received_at")[:TIMELINE_LENGTH]
    )
    items = sorted(
        chain(
            ({"at": a.requested_at, "action": a} for a in actions),
            ({"at": e.received_at, "event": e} for e in events),
        ),
        key=lambda item: item["at"],
        reverse=True,
    )[:TIMELINE_LENGTH]
    return actions, items


def timeline_shown(items):
    """What a timeline shows that can change: an action's state, an event's processing."""
    return [
        ("a", item["action"].pk, item["action"].state)
        if "action" in item
        else ("e", item["event"].pk, item["event"].processed_at, item["event"].error)
        for item in items
    ]


def last_event_at(row, items):
    """When Zoom last told us about this meeting or webinar: the newest of the row's last applied
    status report and the newest event in its timeline (an update of its topic moves no status
    report, yet it is news from Zoom)."""
    newest = next((item["at"] for item in items if "event" in item), None)
    return max((t for t in (row.last_event_at, newest) if t), default=None)


def job_shown(job):
    return job and (job.pk, job.state)
