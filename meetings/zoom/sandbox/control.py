"""
The control API under /_sandbox/: JSON endpoints through which another process (the demo, the
benchmarks, fault tests) drives the sandbox the way tests in the same process call `state`
directly. Not part of Zoom; unauthenticated, so the sandbox binds to 127.0.0.1 by default.

GET /_sandbox/ lists the endpoints.
"""

import json
import re

from werkzeug.wrappers import Response

from .seed import seed_world

ENDPOINTS = {
    "GET /_sandbox/state": "summary of the world and the faults",
    "POST /_sandbox/reset": "{seed?, plan?, token_ttl?, users?, meetings?, webinars?}: fresh "
    "world (seeded when seed or counts are given)",
    "POST /_sandbox/seed": "{seed?, users?, meetings?, webinars?, past_instances?}: add "
    "deterministic fake data",
    "POST /_sandbox/announce": "send the events that tell a receiver the world's state "
    "(meetings deleted or just ended, webinars live, live streams running); Zoom has no such "
    "call",
    "POST /_sandbox/users": "{email, first_name?, last_name?, role_name?, status?, "
    "webinar_licence?}",
    "GET /_sandbox/users": "every user (id, email, role)",
    "POST /_sandbox/meetings": "{user_id, topic?, type?, status?, host_locked?, on_premise?, "
    "livestream?, livestreaming?}",
    "GET /_sandbox/meetings": "?status=started&host_id=...&limit=100: meetings (stream keys "
    "masked)",
    "GET /_sandbox/meetings/{id}": "one meeting (stream key masked) and its past instances",
    "POST /_sandbox/meetings/{id}/{start|end|delete|recover}": "as if it happened in Zoom",
    "POST /_sandbox/meetings/{id}/livestream/{start|stop}": "as if the host did it in Zoom",
    "POST /_sandbox/meetings/{id}/past_instances": "{uuid?, slash?: leading|double}",
    "POST /_sandbox/webinars": "{user_id, topic?, status?, host_locked?}",
    "POST /_sandbox/webinars/{id}/{start|end}": "as if it happened in Zoom",
    "GET|POST /_sandbox/faults": "{error_rate, latency_ms, slow_rate, slow_ms, answer_delay_ms, "
    "down, down_mode: refuse|503, down_for (seconds; required for refuse over HTTP), "
    "silent_end_rate, html_errors, first_try_errors}",
    "POST /_sandbox/rate_limits": "{label: light|medium|heavy, per_second (null: the plan's), "
    "account_id?} or {plan: free|pro|business, account_id?} or {label, per_day (null: no cap), "
    "plan?: free}: the plan's daily cap",
    "POST /_sandbox/plan": "{plan: free|pro|business, account_id?}: the account's plan (rate "
    "limits; `type=live` lists live meetings and the Dashboard answers on business only)",
    "POST /_sandbox/revoke": "{account_id?, client_id?, user_id?}: revoke matching grants",
    "POST /_sandbox/apps": "{client_id, client_secret, account_id?, kind?, redirect_uris?, "
    "scopes? (granular by default; classic ones for an older app), webhook_url?, "
    "webhook_secret?}: register an app; DELETE /_sandbox/apps/{client_id} removes one",
    "POST /_sandbox/tokens/expire": "every access token expires now",
    "POST /_sandbox/page_tokens/expire": "every next_page_token expires now",
    "POST /_sandbox/clock": "{advance: seconds}: move the sandbox's clock forward",
    "POST /_sandbox/livestream_start_interval": "{seconds}: the 30 s between live stream starts",
    "POST /_sandbox/end_status_lag": "{seconds}: how long an ended meeting or webinar still "
    "shows started after the 204 to the API's end, before its *.ended event (0: at once)",
    "GET|POST /_sandbox/webhook": "{url, secret?, client_id?, validate?}: an app's event "
    "subscription (the default Server-to-Server app's unless client_id says): where its "
    "account's events are sent, and the secret token they are signed with",
    "POST /_sandbox/webhook/hold": "keep events unsent until released (late deliveries)",
    "POST /_sandbox/webhook/release": "{order?: as_emitted|reverse|shuffle, seed?}: send the "
    "held events",
    "POST /_sandbox/webhook/faults": "{lose_answers?: n (the receiver gets the first n attempts "
    "but Zoom never hears the answer, so it retries the same signed request), retry_scale?: "
    "Zoom's 5/20/60 min retry gaps times this}",
    "GET /_sandbox/webhook/deliveries": "what was delivered, with status and attempts",
    "GET /_sandbox/requests": "?since=SEQ: the request log (no Authorization, keys masked)",
    "GET /_sandbox/counters": "counters (token_requests, status_429, per operation, ...)",
    "GET /_sandbox/contract_violations": "requests/answers that broke the spec",
}


class ControlError(Exception):
    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _json(data, status=200):
    return Response(json.dumps(data, default=str), status=status, content_type="application/json")


def _body(request):
    raw = request.get_data(as_text=True)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ControlError("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def _masked_meeting(state, meeting):
    data = dict(meeting)
    if data.get("livestream"):
        data["livestream"] = dict(data["livestream"], stream_key="•••")
    data["past_instances"] = [i["uuid"] for i in state.past_instances.get(meeting["id"], ())]
    return data


def _number(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be a number") from None


def handle(app, request, raw_path):
    try:
        return _handle(app, request, raw_path)
    except ControlError as exc:
        return _json({"error": str(exc)}, status=exc.status)
    except KeyError as exc:
        return _json({"error": f"not found: {exc.args[0]}"}, status=404)
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, status=400)


def _handle(app, request, raw_path):
    state = app.state
    method = request.method
    path = raw_path[len("/_sandbox") :].rstrip("/") or "/"
    state.settle_ends()
    if method == "GET" and path == "/":
        return _json({"endpoints": ENDPOINTS})
    if method == "GET" and path == "/state":
        return _json(state.summary())
    if method == "GET" and path == "/counters":
        with state.lock:
            return _json(dict(state.counters))
    if method == "GET" and path == "/requests":
        since = int(request.args.get("since", "0"))
        return _json({"requests": [r.as_json() for r in state.requests_since(since)]})
    if method == "GET" and path == "/contract_violations":
        with state.lock:
            return _json({"violations": list(state.contract_violations)})
    if method == "GET" and path == "/faults":
        return _json(state.faults.as_json())
    if method == "GET" and path == "/webhook":
        return _json({"url": state.webhook_url})
    if method == "GET" and path == "/webhook/deliveries":
        with state.lock:
            return _json({"deliveries": list(state.webhook_deliveries)})
    if method == "GET" and path == "/users":
        with state.lock:
            users = [state.user_json(u) for u in state.users.values()]
        return _json({"users": users})
    if method == "GET" and path == "/meetings":
        limit = int(request.args.get("limit", "100"))
        status = request.args.get("status")
        host_id = request.args.get("host_id")
        with state.lock:
            found = []
            for meeting in state.meetings.values():
                if status and meeting["status"] != status:
                    continue
                if host_id and meeting["host_id"] != host_id:
                    continue
                found.append(_masked_meeting(state, meeting))
                if len(found) >= limit:
                    break
        return _json({"meetings": found})
    match = re.fullmatch(r"/meetings/(\d+)", path)
    if method == "GET" and match:
        with state.lock:
            return _json(_masked_meeting(state, state.meetings[int(match[1])]))
    if method == "DELETE":
        match = re.fullmatch(r"/apps/([^/]+)", path)
        if match:
            state.remove_app(match[1])
            return _json({"removed": match[1]})
    if method != "POST":
        raise ControlError(f"no such control endpoint: {method} {path}", status=404)

    body = _body(request)
    if path == "/reset":
        counts = {k: body[k] for k in ("users", "meetings", "webinars") if k in body}
        state.reset(seed=body.get("seed"), plan=body.get("plan"), token_ttl=body.get("token_ttl"))
        if "seed" in body or counts:
            seed_world(state, seed=body.get("seed"), **counts)
        return _json(state.summary())
    if path == "/seed":
        kwargs = {
            k: body[k]
            for k in ("users", "meetings", "webinars", "past_instances", "live_share")
            if k in body
        }
        seed_world(state, seed=body.get("seed"), **kwargs)
        return _json(state.summary())
    if path == "/announce":
        return _json({"sent": state.announce_world()})
    if path == "/users":
        allowed = (
            "first_name",
            "last_name",
            "role_name",
            "status",
            "dept",
            "account_id",
            "webinar_licence",
        )
        user = state.add_user(body.get("email"), **{k: body[k] for k in allowed if k in body})
        return _json(state.user_json(user), status=201)
    if path == "/meetings":
        allowed = (
            "topic",
            "type",
            "status",
            "duration",
            "host_locked",
            "on_premise",
            "livestream",
            "livestreaming",
            "agenda",
        )
        meeting = state.add_meeting(
            body["user_id"], emit=True, **{k: body[k] for k in allowed if k in body}
        )
        with state.lock:
            return _json(_masked_meeting(state, meeting), status=201)
    match = re.fullmatch(r"/meetings/(\d+)/(start|end|delete|recover)", path)
    if match:
        meeting_id, action = int(match[1]), match[2]
        operation = {
            "start": state.start_meeting,
            "end": state.end_meeting,
            "delete": state.delete_meeting,
            "recover": state.recover_meeting,
        }[action]
        operation(meeting_id)
        with state.lock:
            return _json(_masked_meeting(state, state.meetings[meeting_id]))
    match = re.fullmatch(r"/meetings/(\d+)/livestream/(start|stop)", path)
    if match:
        meeting_id = int(match[1])
        with state.lock:
            meeting = state.meetings[meeting_id]
            if match[2] == "start":
                if not meeting["livestream"] or meeting["status"] != "started":
                    raise ControlError("the meeting must be live and have a stream configured")
                if not meeting["livestreaming"]:
                    state.start_livestream(meeting_id)
            elif meeting["livestreaming"]:
                state.stop_livestream(meeting_id)
            return _json(_masked_meeting(state, meeting))
    match = re.fullmatch(r"/meetings/(\d+)/past_instances", path)
    if match:
        instance = state.add_past_instance(
            int(match[1]), uuid=body.get("uuid"), slash=body.get("slash")
        )
        return _json({"uuid": instance["uuid"], "id": instance["id"]}, status=201)
    if path == "/webinars":
        allowed = ("topic", "type", "status", "duration", "host_locked")
        webinar = state.add_webinar(
            body["user_id"], emit=True, **{k: body[k] for k in allowed if k in body}
        )
        return _json(dict(webinar), status=201)
    match = re.fullmatch(r"/webinars/(\d+)/(start|end)", path)
    if match:
        webinar_id = int(match[1])
        (state.start_webinar if match[2] == "start" else state.end_webinar)(webinar_id)
        with state.lock:
            return _json(dict(state.webinars[webinar_id]))
    if path == "/faults":
        down = bool(body.get("down", False))
        down_mode = body.get("down_mode", "refuse")
        down_for = body.get("down_for")
        if down and down_mode == "refuse" and not down_for:
            raise ControlError(
                "down with down_mode 'refuse' closes this port, control API included: give "
                "down_for (seconds) so the sandbox comes back by itself"
            )
        if down_for is not None and not 0 < _number(down_for, "down_for") <= 3600:
            raise ControlError("down_for must be between 0 and 3600 seconds")
        faults = state.set_faults(
            error_rate=_number(body.get("error_rate", 0.0), "error_rate"),
            latency_ms=_number(body.get("latency_ms", 0), "latency_ms"),
            slow_rate=_number(body.get("slow_rate", 0.0), "slow_rate"),
            slow_ms=_number(body.get("slow_ms", 3000), "slow_ms"),
            down=down,
            down_mode=down_mode,
            down_for=float(down_for) if down_for else None,
            silent_end_rate=_number(body.get("silent_end_rate", 0.0), "silent_end_rate"),
            html_errors=bool(body.get("html_errors", False)),
            answer_delay_ms=_number(body.get("answer_delay_ms", 0), "answer_delay_ms"),
            first_try_errors=bool(body.get("first_try_errors", False)),
        )
        return _json(faults.as_json())
    if path == "/rate_limits":
        account_id = body.get("account_id")
        if "plan" in body:
            state.set_plan(body["plan"], account_id or "sandbox-account")
        if "label" in body and "per_day" in body:
            per_day = body["per_day"]
            state.set_daily_limit(
                body["label"],
                None if per_day is None else _number(per_day, "per_day"),
                body.get("plan", "free"),
            )
        if "label" in body and ("per_second" in body or "per_day" not in body):
            per_second = body.get("per_second")
            state.set_rate_limit(
                body["label"],
                None if per_second is None else _number(per_second, "per_second"),
                account_id,
            )
        return _json({"ok": True})
    if path == "/plan":
        account_id = body.get("account_id") or "sandbox-account"
        if account_id not in state.accounts:
            raise ControlError(f"no such account: {account_id}", status=404)
        state.set_plan(body.get("plan"), account_id)
        return _json({"account_id": account_id, "plan": state.accounts[account_id]["plan"]})
    if path == "/revoke":
        count = state.revoke_tokens(
            account_id=body.get("account_id"),
            client_id=body.get("client_id"),
            user_id=body.get("user_id"),
        )
        return _json({"revoked": count})
    if path == "/apps":
        allowed = (
            "account_id",
            "kind",
            "redirect_uris",
            "scopes",
            "name",
            "webhook_url",
            "webhook_secret",
        )
        state.add_app(
            body["client_id"], body["client_secret"], **{k: body[k] for k in allowed if k in body}
        )
        return _json({"client_id": body["client_id"]}, status=201)
    if path == "/tokens/expire":
        state.expire_access_tokens()
        return _json({"ok": True})
    if path == "/page_tokens/expire":
        return _json({"expired": state.expire_page_tokens()})
    if path == "/clock":
        state.advance_clock(_number(body.get("advance", 0), "advance"))
        return _json({"clock_offset": state.clock_offset})
    if path == "/livestream_start_interval":
        with state.lock:
            state.livestream_start_interval = _number(body.get("seconds", 30), "seconds")
        return _json({"seconds": state.livestream_start_interval})
    if path == "/end_status_lag":
        seconds = _number(body.get("seconds"), "seconds")
        if not 0 <= seconds <= 3600:
            raise ControlError("seconds must be between 0 and 3600")
        with state.lock:
            state.end_status_lag = seconds
        return _json({"seconds": state.end_status_lag})
    if path == "/webhook":
        client_id = body.get("client_id") or "sandbox-s2s-client"
        state.set_webhook(body.get("url"), body.get("secret"), client_id=client_id)
        target = state.apps[client_id]
        answer = {"url": target.webhook_url, "client_id": client_id}
        if body.get("validate") and target.webhook_url and state.webhook_sender is not None:
            answer["validated"] = state.webhook_sender.validate_endpoint(
                target.webhook_url, target.webhook_secret
            )
        return _json(answer)
    sender = state.webhook_sender
    if path == "/webhook/hold" and sender is not None:
        sender.hold()
        return _json({"holding": True})
    if path == "/webhook/release" and sender is not None:
        released = sender.release(body.get("order", "as_emitted"), seed=body.get("seed"))
        return _json({"released": released})
    if path == "/webhook/faults" and sender is not None:
        if "lose_answers" in body:
            sender.lose_answers = int(_number(body["lose_answers"], "lose_answers"))
        if "retry_scale" in body:
            sender.retry_scale = _number(body["retry_scale"], "retry_scale")
        return _json({"lose_answers": sender.lose_answers, "retry_delays": sender.retry_delays})
    raise ControlError(f"no such control endpoint: {method} {path}", status=404)
