"""
Deterministic fake data: the same seed gives the same users, meetings, webinars and past
instances (ids and UUIDs included), so the demo and benchmarks are repeatable.

The defaults make a small organisation (5 users, 200 meetings, 20 webinars); the counts scale
linearly, so a benchmark can ask for 100,000 meetings and get them in a second or two.
"""

import gc
import random

from .state import DEFAULT_ACCOUNT_ID

FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jun"]
LAST_NAMES = ["Okafor", "Silva", "Nguyen", "Kowalski", "Haddad", "Murphy", "Tanaka", "Berg"]
TEAMS = ["Sales", "Support", "Engineering", "Finance", "People", "Marketing", "Legal", "Ops"]
THINGS = [
    "weekly sync",
    "all hands",
    "standup",
    "review",
    "planning",
    "town hall",
    "1:1",
    "training",
    "retro",
    "customer call",
    "board prep",
    "onboarding",
]
# Meetings whose latest instance ended in the last hours, and webinars live, in every world.
RECENT_ENDS = 3
LIVE_WEBINARS = 2
# Personal meeting ID rooms (type 4), the first of them live, and live instant meetings (type 1)
# in every world: Zoom's lists never show either, so the dashboard knows them only from events
# and the Dashboard API, and the demo and tests must meet them.
PMI_ROOMS = 3
LIVE_PMI_ROOMS = 2
LIVE_INSTANT = 2


def seed_world(
    state,
    seed=None,
    *,
    users=5,
    meetings=200,
    webinars=20,
    past_instances=None,
    live_share=0.1,
    account_id=DEFAULT_ACCOUNT_ID,
):
    """Add users (the account's owner plus an admin and members, every third member without a
    webinar licence), meetings across them (about
    `live_share` of them live, some of those with a custom live stream configured and some of
    those streaming, at least one when any is configured; a few deleted), webinars (some live,
    at least two) and past instances (some with UUIDs that start with "/" or contain "//", a
    few of meetings that ended in the last hours), and meetings no list shows: personal meeting
    ID rooms (PMI_ROOMS, LIVE_PMI_ROOMS of them live) and live instant meetings (LIVE_INSTANT).
    Sends no webhooks: `state.announce_world()` sends what a receiver needs to know of it.
    Returns a summary dict."""
    rng = random.Random(f"zoom-sandbox-{seed}")
    past_instances = meetings // 3 if past_instances is None else past_instances
    with state.lock:
        hosts = [u for u in state.users.values() if u["account_id"] == account_id]
        for n in range(max(0, users - len(hosts))):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            hosts.append(
                state.add_user(
                    email=f"{first}.{last}.{n + 1}@sandbox.example".lower(),
                    first_name=first,
                    last_name=last,
                    role_name="Admin" if n == 0 else "Member",
                    dept=rng.choice(TEAMS),
                    account_id=account_id,
                    # Every third member has no webinar licence, as in most organisations
                    # (webinars are a paid add-on per user): Zoom refuses their webinar list.
                    webinar_licence=n % 3 != 1,
                )
            )
        created = []
        now = state.now()
        # One random() per choice: at 100,000 meetings, random.choice/randint's overhead is
        # most of the time.
        rand = rng.random
        durations = (15, 30, 45, 60, 90, 120)
        streams = 0
        for n in range(meetings):
            host = hosts[n] if n < len(hosts) else hosts[int(rand() * len(hosts))]
            live = rand() < live_share
            r = rand()
            kind = 2 if r < 0.70 else 8 if r < 0.85 else 3 if r < 0.95 else 1
            if kind == 1 and not live:
                kind = 2  # an instant meeting only exists while it runs
            livestream = None
            streaming = False
            if (live and rand() < 0.4) or rand() < 0.03:
                livestream = {
                    "stream_url": f"rtmp://live.sandbox.example/app{n}",
                    "stream_key": f"sbx-key-{rng.getrandbits(48):012x}",
                    "page_url": f"https://watch.sandbox.example/{n}",
                    "resolution": "1080p" if rand() < 0.5 else "720p",
                }
                # At least one streaming, so even a small world can show "Stop the stream".
                streaming = live and (rand() < 0.5 or streams == 0)
                streams += streaming
            status = "started" if live else ("deleted" if rand() < 0.02 else "waiting")
            start_time = None
            if live:
                start_time = now - 60 - int(rand() * 5340)
            elif kind != 3:
                start_time = now + int((rand() * 90 - 30) * 86400)
            meeting = state.add_meeting(
                host["id"],
                f"{TEAMS[int(rand() * len(TEAMS))]} {THINGS[int(rand() * len(THINGS))]}",
                type=kind,
                status=status,
                start_time=start_time,
                duration=durations[int(rand() * len(durations))],
                livestream=livestream,
                livestreaming=streaming,
            )
            if live:
                meeting["instance_started_at"] = start_time
            created.append(meeting)

        # Drawn from their own generator, after the rest: the listed world stays as it was.
        unlisted = _add_unlisted(state, hosts, random.Random(f"zoom-sandbox-{seed}-unlisted"))

        candidates = [m for m in created if m["type"] != 1]
        recent_left = RECENT_ENDS
        for n in range(min(past_instances, len(candidates) * 3)):
            meeting = (
                candidates[n % len(candidates)] if n < len(candidates) else rng.choice(candidates)
            )
            # A handful of the awkward UUIDs Zoom's docs warn about, first, so even small seeds
            # have them.
            slash = "leading" if n in (0, 2) else "double" if n in (1, 3) else None
            ago = rng.randint(1, 60) * 86400 + rng.randint(0, 86399)
            if recent_left and n < len(candidates) and meeting["status"] == "waiting":
                # Ended minutes to hours ago (announce_world() reports these as just ended).
                # The same draws as the others, so the rest of the world does not change.
                ago = 600 + ago % (6 * 3600)
                recent_left -= 1
            ended = now - ago
            state.add_past_instance(
                meeting["id"],
                start_time=ended - rng.randint(10, 120) * 60,
                end_time=ended,
                participants=rng.randint(2, 300),
                slash=slash,
            )

        licensed = [h for h in hosts if h.get("webinar_licence", True)] or hosts
        for n in range(webinars):
            host = rng.choice(hosts)
            if host not in licensed:
                # Only a licensed user hosts webinars; the next licensed one, without another
                # draw, so the rest of the world is what the seed always gave.
                host = licensed[(hosts.index(host)) % len(licensed)]
            # The first two always live, so every world has webinars to end.
            live = rng.random() < max(live_share, 0.15) or n < LIVE_WEBINARS
            state.add_webinar(
                host["id"],
                f"{rng.choice(TEAMS)} webinar: {rng.choice(THINGS)}",
                type=rng.choice((5, 5, 9)),
                status="started" if live else "waiting",
                start_time=(now - rng.randint(60, 3600))
                if live
                else now + rng.randint(1, 30) * 86400,
            )
        summary = {
            "users": len(hosts),
            "meetings": len(created),
            "webinars": webinars,
            "past_instances": min(past_instances, len(candidates) * 3),
            "unlisted_meetings": len(unlisted),
        }
    settle_heap(state)
    return summary


# From this many meetings on, a world is moved out of the garbage collector's sight once seeded.
SETTLE_AT_MEETINGS = 10_000


def settle_heap(state):
    """Keep Python's full garbage collection from pausing a large sandbox world.

    With 200,000 meetings a full collection took ~100 ms (measured: gc.collect(2) after seeding
    5,000 users and 200,000 meetings), and the requests that queued meanwhile were then counted
    against the rate limit together, as if the client had sent them bunched: a sync that kept
    its distance from Zoom's limit met 429s that Zoom, whose edge counts requests as they arrive,
    would not have sent (BENCHMARKS.md section 3). The world is long-lived: it is frozen
    (`gc.freeze`), and `SandboxState.reset` unfreezes it before it is dropped."""
    if len(state.meetings) >= SETTLE_AT_MEETINGS:
        gc.collect()
        gc.freeze()


def _add_unlisted(state, hosts, rng):
    """The PMI rooms and instant meetings of seed_world (see there)."""
    added = []
    now = state.now()
    for n, host in enumerate(hosts[:PMI_ROOMS]):
        if host["pmi"] in state.meetings:
            continue  # seeded twice into one world: a user has one personal room
        live = n < LIVE_PMI_ROOMS
        meeting = state.add_meeting(
            host["id"],
            f"{host['first_name']} {host['last_name']}'s Personal Meeting Room",
            type=4,
            meeting_id=host["pmi"],
            status="started" if live else "waiting",
        )
        if live:
            meeting["instance_started_at"] = now - rng.randint(60, 3600)
        added.append(meeting)
    for n in range(LIVE_INSTANT):
        host = hosts[(n + 1) % len(hosts)]
        meeting = state.add_meeting(
            host["id"],
            f"{host['first_name']}'s instant meeting {rng.randint(1, 99)}",
            type=1,
            status="started",
            duration=60,
        )
        meeting["instance_started_at"] = now - rng.randint(60, 1800)
        added.append(meeting)
    return added
