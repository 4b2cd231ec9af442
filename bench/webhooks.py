"""
5. Webhook ingest: Zoom events, signed as Zoom signs them, POSTed to `/webhooks/zoom/` on
gunicorn (2 workers, PostgreSQL, Redis) by concurrent senders for a fixed time. Each event is
distinct (Zoom's retries of one delivery would be dropped as duplicates). Figures: events
verified and stored per second (counted in the database afterwards), and each request's time as
the sender saw it. No worker runs, so this is the receiver alone: verify, store, enqueue.
"""

import json
import threading
import time

import requests

from .harness import BenchError, Result, fmt, median, ms, percentile

TITLE = "5. Webhook ingest: signed Zoom events verified and stored"
PROFILES = ("service",)
TIMEOUT = 240

SENDERS = 8
SECONDS = 15.0
WARMUP = 20
ONE_AT_A_TIME = 200


def run(ctx, options):
    from django.conf import settings

    from meetings.models import WebhookEvent
    from meetings.webhooks import sign

    from .harness import purge_broker, sandbox_account

    account = sandbox_account()
    _, url = ctx.start_gunicorn(workers=2)
    endpoint = f"{url}/webhooks/zoom/"
    secret = settings.ZOOM_WEBHOOK_SECRET_TOKEN
    counter = iter(range(1, 10**9))
    lock = threading.Lock()

    def event():
        with lock:
            n = next(counter)
        body = {
            "event": "meeting.started",
            "event_ts": int(time.time() * 1000),
            "payload": {
                "account_id": account.zoom_account_id,
                "object": {
                    "id": 82_000_000_000 + n,
                    "uuid": f"bench{n:019d}==",
                    "host_id": "benchHost000000000000A",
                    "topic": f"Bench meeting {n}",
                    "type": 2,
                    "start_time": "2026-01-01T10:00:00Z",
                    "timezone": "UTC",
                    "duration": 30,
                },
            },
        }
        raw = json.dumps(body).encode()
        timestamp = str(int(time.time()))
        return raw, {
            "Content-Type": "application/json",
            "x-zm-request-timestamp": timestamp,
            "x-zm-signature": sign(secret, timestamp, raw),
        }

    def post(session):
        raw, headers = event()
        started = time.perf_counter()
        response = session.post(endpoint, data=raw, headers=headers, timeout=30)
        return response.status_code, time.perf_counter() - started

    warm = requests.Session()
    for _ in range(WARMUP):
        status, _ = post(warm)
        if status != 200:
            raise BenchError(f"the webhook endpoint answered {status}")
    ctx.say(f"{ONE_AT_A_TIME} events one at a time")
    alone = []
    for _ in range(ONE_AT_A_TIME):
        status, took = post(warm)
        if status != 200:
            raise BenchError(f"the webhook endpoint answered {status}")
        alone.append(took)
    stored_before = WebhookEvent.objects.count()

    times, statuses = [], []
    stop_at = time.perf_counter() + SECONDS

    def sender():
        session = requests.Session()
        mine, codes = [], []
        while time.perf_counter() < stop_at:
            status, took = post(session)
            mine.append(took)
            codes.append(status)
        with lock:
            times.extend(mine)
            statuses.extend(codes)

    ctx.say(f"{SENDERS} senders for {SECONDS:.0f} s")
    started = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 60)
    elapsed = time.perf_counter() - started
    stored = WebhookEvent.objects.count() - stored_before
    accepted = sum(1 for s in statuses if s == 200)
    errors = len(statuses) - accepted
    purge_broker()  # the processing tasks nobody will run

    result = Result(
        "webhooks",
        TITLE,
        setup=(
            f"gunicorn 2 sync workers, PostgreSQL + Redis; {SENDERS} concurrent senders for "
            f"{SECONDS:.0f} s after {WARMUP} warm-up events; distinct meeting.started events"
        ),
        columns=[
            "senders",
            "events sent",
            "stored",
            "errors",
            "stored/s",
            "request median ms",
            "request p95 ms",
        ],
        rows=[
            [
                "1 (one at a time)",
                fmt(ONE_AT_A_TIME),
                fmt(ONE_AT_A_TIME),
                "0",
                fmt(ONE_AT_A_TIME / sum(alone)),
                fmt(ms(median(alone))),
                fmt(ms(percentile(alone, 95))),
            ],
            [
                f"{SENDERS} concurrent",
                fmt(len(statuses)),
                fmt(stored),
                fmt(errors),
                fmt(stored / elapsed),
                fmt(ms(median(times))),
                fmt(ms(percentile(times, 95))),
            ],
        ],
    )
    result.check(
        "every accepted event stored, nothing refused",
        f"{stored:,} stored of {accepted:,} accepted, {errors} errors",
        "all, 0 errors",
        stored == accepted and errors == 0,
    )
    return result
