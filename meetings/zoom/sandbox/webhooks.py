"""
Webhook delivery, as Zoom does it: a JSON POST signed with the app's secret token,
`x-zm-signature: v0=HMAC_SHA256(secret, "v0:{x-zm-request-timestamp}:{body}")` (hex), sent from
a background thread in the order the events happened, retried a bounded number of times when the
receiver does not answer 2xx in time (Zoom waits 3 s; it retries three times).
"""

import hashlib
import hmac
import json
import logging
import queue
import secrets
import threading
import time

import requests

logger = logging.getLogger("meetings.zoom.sandbox")


def sign(secret, timestamp, body):
    """Zoom's x-zm-signature for a raw body (bytes) sent at `timestamp` (seconds, as a str)."""
    message = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def url_validation_token(secret, plain_token):
    """What a receiver must answer to endpoint.url_validation: hex HMAC of the plain token."""
    return hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()


class WebhookSender:
    """One daemon thread that POSTs queued events in order, with bounded retries."""

    def __init__(self, state, *, timeout=3.0, retry_delays=(0.2, 1.0, 3.0)):
        self.state = state
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.queue = queue.Queue()
        self.session = requests.Session()
        self._busy = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread = None

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
        self.queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self.session.close()

    def send(self, url, secret, body):
        with self._cond:
            self._busy += 1
        self.queue.put((url, secret, body))

    def clear(self):
        """Drop events not yet sent (a reset)."""
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._done()

    def wait_idle(self, timeout=5.0):
        """Block until every queued event was delivered or given up on. True if idle."""
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

    def _run(self):
        while not self._stopping.is_set():
            item = self.queue.get()
            if item is None:
                continue
            try:
                self._deliver(*item)
            except Exception:  # a sender that dies silently would hide every later event
                logger.exception("sandbox webhook delivery crashed")
            finally:
                self._done()

    def _deliver(self, url, secret, body):
        raw = json.dumps(body, separators=(",", ":")).encode()
        obj = body["payload"]["object"]
        delivery = {
            "event": body["event"],
            "event_ts": body["event_ts"],
            "object_id": obj.get("id"),
            "uuid": obj.get("uuid"),
            "url": url,
            "attempts": 0,
            "status": None,
            "ok": False,
            "error": "",
            "time": time.time(),
        }
        delays = (0.0, *self.retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            if delay and self._stopping.wait(delay):
                break
            delivery["attempts"] = attempt
            timestamp = str(int(self.state.now()))
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Zoom Marketplace/1.0a",
                "x-zm-request-timestamp": timestamp,
                "x-zm-signature": sign(secret, timestamp, raw),
                "x-zm-trackingid": "sbx_" + secrets.token_hex(8),
            }
            try:
                response = self.session.post(url, data=raw, headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                delivery["status"] = None
                delivery["error"] = type(exc).__name__
                continue
            delivery["status"] = response.status_code
            if 200 <= response.status_code < 300:
                delivery["ok"] = True
                delivery["error"] = ""
                break
            delivery["error"] = f"HTTP {response.status_code}"
        self.state.record_delivery(delivery)

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
