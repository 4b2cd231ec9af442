"""
Webhook delivery, as Zoom does it: a JSON POST signed with the app's secret token,
`x-zm-signature: v0=HMAC_SHA256(secret, "v0:{x-zm-request-timestamp}:{body}")` (hex), sent from
a background thread, retried when the receiver does not answer 2xx within 3 s.

Zoom's retry schedule (developers.zoom.us/blog/webhook-delays: "the first retry will be sent 5
minutes after the initial notification delivery attempt, second retry ... 20 minutes after the
first retry attempt and third retry ... 60 minutes after the second"), scaled down by
`retry_scale` so a test does not wait 85 minutes (`retry_scale=1` is Zoom's own). Every retry
carries the first attempt's `x-zm-request-timestamp` and signature: no source says Zoom signs a
retry afresh, so the sandbox assumes the worst for a receiver, that it does not (NangoHQ/nango#7484
widened its timestamp window to 90 minutes for that reason). A retry does not hold back later
events: a receiver sees events out of order whenever one was retried.

Deliveries can also be held and released later, in any order (`hold()`, `release(order=...)`):
Zoom has delivered events hours late and out of order (raman325/ha-zoom-automation#57, one six
hours late). A held event is stamped when it is finally sent, its `event_ts` says when it happened.
`lose_answers = n`: the receiver gets each delivery's first n attempts but Zoom never hears its
answer (a timeout on the way back), so it retries the same signed request.
"""

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import secrets
import threading
import time

import requests

logger = logging.getLogger("meetings.zoom.sandbox")

# Seconds between attempts in Zoom's schedule: 5 min, then 20 min, then 60 min (85 min in all).
ZOOM_RETRY_GAPS = (300.0, 1200.0, 3600.0)
DEFAULT_RETRY_SCALE = 1 / 1200  # 0.25 s, 1 s, 3 s


def sign(secret, timestamp, body):
    """Zoom's x-zm-signature for a raw body (bytes) sent at `timestamp` (seconds, as a str)."""
    message = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def url_validation_token(secret, plain_token):
    """What a receiver must answer to endpoint.url_validation: hex HMAC of the plain token."""
    return hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()


class WebhookSender:
    """One daemon thread that POSTs deliveries when they are due, retrying on Zoom's (scaled)
    schedule. `retry_delays` (real seconds between attempts) may be set directly."""

    def __init__(self, state, *, timeout=3.0, retry_scale=DEFAULT_RETRY_SCALE, retry_delays=None):
        self.state = state
        self.timeout = timeout
        self.retry_delays = (
            tuple(retry_delays)
            if retry_delays is not None
            else tuple(gap * retry_scale for gap in ZOOM_RETRY_GAPS)
        )
        self.lose_answers = 0
        self.session = requests.Session()
        self._due = []  # heap of (monotonic due time, sequence, delivery)
        self._held = []
        self._holding = False
        self._seq = itertools.count()
        self._busy = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread = None

    @property
    def retry_scale(self):
        return self.retry_delays[0] / ZOOM_RETRY_GAPS[0] if self.retry_delays else 0.0

    @retry_scale.setter
    def retry_scale(self, scale):
        self.retry_delays = tuple(gap * scale for gap in ZOOM_RETRY_GAPS)

    def start(self):
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name="zoom-sandbox-webhooks", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout=5.0):
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self.session.close()

    def send(self, url, secret, body, *, client_id=None):
        """Queue an event for one app's subscription (sent at once unless deliveries are held)."""
        delivery = {
            "url": url,
            "secret": secret,
            "body": body,
            "client_id": client_id,
            "raw": json.dumps(body, separators=(",", ":")).encode(),
            "timestamp": None,
            "record": {
                "event": body["event"],
                "event_ts": body["event_ts"],
                "object_id": body["payload"]["object"].get("id"),
                "uuid": body["payload"]["object"].get("uuid"),
                "account_id": body["payload"].get("account_id"),
                "client_id": client_id,
                "url": url,
                "attempts": 0,
                "timestamps": [],
                "status": None,
                "ok": False,
                "error": "",
                "time": time.time(),
            },
        }
        with self._cond:
            if self._holding:
                self._held.append(delivery)
                return
            self._busy += 1
            self._schedule(delivery, 0.0)

    def _schedule(self, delivery, delay):
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), delivery))
        self._cond.notify_all()

    def hold(self):
        """Keep every event from now on until `release()`: a delivery delayed on Zoom's side."""
        with self._cond:
            self._holding = True

    def release(self, order="as_emitted", *, seed=None):
        """Send the held events: "as_emitted", "reverse" or "shuffle"d. Returns how many."""
        with self._cond:
            held, self._held, self._holding = self._held, [], False
            if order == "reverse":
                held.reverse()
            elif order == "shuffle":
                random.Random(seed).shuffle(held)
            elif order != "as_emitted":
                self._held, self._holding = held, True
                raise ValueError("order must be as_emitted, reverse or shuffle")
            for delivery in held:
                self._busy += 1
                # One after another, in the chosen order: the sender sends due items by time.
                self._schedule(delivery, 0.0)
            return len(held)

    @property
    def held(self):
        with self._cond:
            return len(self._held)

    def clear(self):
        """Drop events not yet sent, held ones included, and forget the faults (a reset)."""
        with self._cond:
            dropped = len(self._due)
            self._due.clear()
            self._held.clear()
            self._holding = False
            self.lose_answers = 0
            self._busy = max(0, self._busy - dropped)
            self._cond.notify_all()

    def wait_idle(self, timeout=5.0):
        """Block until every event sent (not held) was delivered or given up on. True if idle."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _done(self):
        with self._cond:
            self._busy = max(0, self._busy - 1)
            self._cond.notify_all()

    def _next(self):
        """The next due delivery, waiting for it; None when stopping."""
        with self._cond:
            while not self._stopping.is_set():
                if self._due:
                    due, _, delivery = self._due[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._due)
                        return delivery
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
        return None

    def _run(self):
        while not self._stopping.is_set():
            delivery = self._next()
            if delivery is None:
                return
            try:
                finished = self._attempt(delivery)
            except Exception:  # a sender that dies silently would hide every later event
                logger.exception("sandbox webhook delivery crashed")
                finished = True
            if finished:
                self.state.record_delivery(delivery["record"])
                self._done()

    def _attempt(self, delivery):
        """One attempt; True when the delivery is finished (delivered or given up on)."""
        record = delivery["record"]
        if delivery["timestamp"] is None:
            # Stamped and signed once, at the first attempt; every retry sends the same.
            delivery["timestamp"] = str(int(self.state.now()))
            delivery["signature"] = sign(delivery["secret"], delivery["timestamp"], delivery["raw"])
        record["attempts"] += 1
        record["timestamps"].append(delivery["timestamp"])
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zoom Marketplace/1.0a",
            "x-zm-request-timestamp": delivery["timestamp"],
            "x-zm-signature": delivery["signature"],
            "x-zm-trackingid": "sbx_" + secrets.token_hex(8),
        }
        try:
            response = self.session.post(
                delivery["url"], data=delivery["raw"], headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            record["status"] = None
            record["error"] = type(exc).__name__
        else:
            record["status"] = response.status_code
            if record["attempts"] <= self.lose_answers:
                record["error"] = "answer lost on the way back to Zoom"
            elif 200 <= response.status_code < 300:
                record["ok"] = True
                record["error"] = ""
                return True
            else:
                record["error"] = f"HTTP {response.status_code}"
        retries_done = record["attempts"] - 1
        if retries_done >= len(self.retry_delays) or self._stopping.is_set():
            return True
        with self._cond:
            self._schedule(delivery, self.retry_delays[retries_done])
        return False

    def validate_endpoint(self, url, secret):
        """Send endpoint.url_validation as Zoom does when an app's event URL is saved; True if
        the receiver answered with the right encryptedToken."""
        plain = secrets.token_urlsafe(16)
        body = {
            "event": "endpoint.url_validation",
            "event_ts": int(self.state.now() * 1000),
            "payload": {"plainToken": plain},
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        timestamp = str(int(self.state.now()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-zm-request-timestamp": timestamp,
            "x-zm-signature": sign(secret, timestamp, raw),
        }
        try:
            response = self.session.post(url, data=raw, headers=headers, timeout=self.timeout)
            answer = response.json()
        except (requests.RequestException, ValueError):
            return False
        expected = url_validation_token(secret, plain)
        return (
            response.status_code == 200
            and answer.get("plainToken") == plain
            and hmac.compare_digest(str(answer.get("encryptedToken", "")), expected)
        )
