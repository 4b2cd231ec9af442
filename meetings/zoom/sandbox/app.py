"""
The sandbox's WSGI application: /oauth/* (oauth.py), /v2/* (api.py) and the control API
/_sandbox/* (control.py), with latency, fault injection, the request log and contract checking
wrapped around the first two. No Django in here: it runs in a thread of the test process or as
its own process (`manage.py zoom_sandbox`).
"""

import json
import logging
import time
from xml.sax.saxutils import escape

from werkzeug.http import http_date
from werkzeug.wrappers import Request, Response

from . import api, control, oauth
from .state import LoggedRequest, SandboxError

logger = logging.getLogger("meetings.zoom.sandbox")

_HIDDEN_HEADERS = {"authorization", "cookie"}

_BAD_GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center></body></html>"
)
_UNAVAILABLE_PAGE = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    "<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)


def _wants_json(request):
    # Zoom answers errors in XML unless the client asks for JSON (NOTES.md).
    return "application/json" in request.headers.get("Accept", "")


def error_response(request, exc):
    headers = dict(exc.headers)
    if _wants_json(request):
        response = Response(
            json.dumps(exc.body()),
            status=exc.status,
            content_type="application/json;charset=UTF-8",
            headers=headers,
        )
    else:
        xml = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<error><code>{exc.code}</code><message>{escape(exc.message)}</message></error>"
        )
        response = Response(
            xml, status=exc.status, content_type="application/xml;charset=UTF-8", headers=headers
        )
    return response


def _mask(data):
    """The JSON body as logged: a stream key is a secret even in a test's request log."""
    if isinstance(data, dict) and "stream_key" in data:
        data = dict(data)
        data["stream_key"] = "•••"
    return data


def _secrets_in(request, response):
    """Values a violation message must not repeat: openapi-core quotes the offending body, and
    a live stream body carries the stream key (a GET answer too); the bearer token, to be safe."""
    found = []
    _, _, token = request.headers.get("Authorization", "").partition(" ")
    if token.strip():
        found.append(token.strip())
    for raw in (request.get_data(as_text=True), response.get_data(as_text=True)):
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("stream_key"), str):
            found.append(data["stream_key"])
    # Longest first, so a secret containing another is masked whole.
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


class SandboxApp:
    def __init__(self, state, checker=None):
        self.state = state
        self.checker = checker

    def __call__(self, environ, start_response):
        request = Request(environ)
        raw_path = api.raw_path_of(environ)
        if raw_path == "/_sandbox" or raw_path.startswith("/_sandbox/"):
            response = control.handle(self, request, raw_path)
            return response(environ, start_response)
        started = time.monotonic()
        response, template = self.answer(request, raw_path)
        # Zoom's Date is Zoom's clock, the one its Retry-After dates are on: the sandbox's
        # (which tests move with advance_clock), not the machine's that werkzeug would send.
        response.headers["Date"] = http_date(self.state.now())
        self._record(request, raw_path, response, template, started)
        return response(environ, start_response)

    # --- the Zoom side -----------------------------------------------------------------------
    def answer(self, request, raw_path):
        state = self.state
        faults = state.faults
        is_api = raw_path.startswith("/v2/") or raw_path == "/v2"
        if faults.down:
            # down_mode "refuse" is the server's job (it closes its socket); anything that still
            # reaches the app while down gets the load balancer's page.
            return self._unavailable(), api.template_for(request.method, raw_path)
        delay_ms = state.base_latency_ms + faults.latency_ms
        if faults.slow_rate and state.roll(faults.slow_rate):
            delay_ms += faults.slow_ms
            state.counters["slow_answers"] += 1
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)
        template = api.template_for(request.method, raw_path) if is_api else ""
        if ((is_api or raw_path == "/oauth/token") and state.roll(faults.error_rate)) or (
            is_api and faults.first_try_errors and state.first_try(request.method, raw_path)
        ):
            state.counters["injected_errors"] += 1
            # 500 and 503 in turn, so a test sees both and always the same sequence.
            second = state.counters["injected_errors"] % 2 == 0
            if faults.html_errors:
                return self._unavailable(bad_gateway=not second), template
            if second:
                exc = SandboxError(503, 503, "Service is temporarily unavailable. Try again later.")
            else:
                exc = SandboxError(500, 500, "Internal Error. Please try again later.")
            return error_response(request, exc), template
        if is_api:
            response = self._api(request, raw_path)
            if faults.answer_delay_ms > 0:
                time.sleep(faults.answer_delay_ms / 1000)
            return response, template
        if raw_path == "/oauth/token":
            return oauth.token(state, request), ""
        if raw_path == "/oauth/revoke":
            return oauth.revoke(state, request), ""
        if raw_path == "/oauth/authorize":
            return oauth.authorize(state, request), ""
        if raw_path == "/":
            return self._home(), ""
        return Response("Not Found", status=404, content_type="text/plain"), ""

    def _api(self, request, raw_path):
        def grant_for(req):
            header = req.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer":
                token = ""
            return self.state.token_grant(token.strip())

        try:
            status, body, _template = api.handle(self.state, request, raw_path, grant_for)
        except SandboxError as exc:
            return error_response(request, exc)
        if body is None:
            response = Response(status=status)
            del response.headers["Content-Type"]  # a 204 has no body, so no type
            return response
        return Response(
            json.dumps(body), status=status, content_type="application/json;charset=UTF-8"
        )

    def _unavailable(self, *, bad_gateway=False):
        if bad_gateway:
            return Response(_BAD_GATEWAY_PAGE, status=502, content_type="text/html")
        return Response(_UNAVAILABLE_PAGE, status=503, content_type="text/html")

    def _home(self):
        text = (
            "Zoom sandbox: a stand-in for Zoom's REST API (/v2), OAuth (/oauth/authorize, "
            "/oauth/token, /oauth/revoke) and webhooks. Control API under /_sandbox/ "
            "(GET /_sandbox/ lists it).\n"
        )
        return Response(text, content_type="text/plain; charset=utf-8")

    # --- bookkeeping ---------------------------------------------------------------------------
    def _record(self, request, raw_path, response, template, started):
        state = self.state
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HIDDEN_HEADERS}
        body_json = None
        if not raw_path.startswith("/oauth/") and request.mimetype == "application/json":
            try:
                body_json = _mask(json.loads(request.get_data(as_text=True) or "null"))
            except ValueError:
                body_json = None
        query = {} if raw_path.startswith("/oauth/") else request.args.to_dict()
        response.headers.setdefault("x-zm-trackingid", f"sbx_{state.request_seq + 1}")
        entry = LoggedRequest(
            method=request.method,
            path=raw_path,
            status=response.status_code,
            time=state.now(),
            headers=headers,
            query=query,
            json=body_json,
            content_type=request.mimetype,
            template=template,
            duration_ms=(time.monotonic() - started) * 1000,
        )
        state.log_request(entry)
        if template and state.contract_checking and self.checker is not None:
            problems = [("request", p) for p in self.checker.check_request(request)]
            problems += [("response", p) for p in self.checker.check_response(request, response)]
            secrets = _secrets_in(request, response)
            for kind, problem in problems:
                for secret in secrets:
                    problem = problem.replace(secret, "•••")
                violation = {
                    "kind": kind,
                    "method": request.method,
                    "path": raw_path,
                    "status": response.status_code,
                    "problem": problem,
                }
                logger.warning("contract violation: %s", violation)
                with state.lock:
                    state.contract_violations.append(violation)
        elif raw_path.startswith("/v2") and not template and state.contract_checking:
            with state.lock:
                state.contract_violations.append(
                    {
                        "kind": "request",
                        "method": request.method,
                        "path": raw_path,
                        "status": response.status_code,
                        "problem": "no such operation among those zoomadmin uses",
                    }
                )
