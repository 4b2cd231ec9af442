"""
Contract checking: every request the sandbox receives on /v2 and every answer it gives, checked
against Zoom's OpenAPI description with openapi-core. The repository carries the description
trimmed to the paths we use (`meetings/zoom/spec/zoom-meetings-api.json`; `trim.py` beside it
says where it comes from and makes it again).

Zoom's whole 2.7 MB spec does not pass openapi-spec-validator, so we extract the operations we use
(they reference no shared components) into a small valid document, and change six things,
each because the published spec is silent or wrong where Zoom is not:
- The server is "/v2" (relative), so the sandbox's own host and port match.
- The "OAuth" security scheme (oauth2, which openapi-core cannot check) becomes HTTP bearer:
  what Zoom actually reads is `Authorization: Bearer <access token>`.
- Path parameters declared with overlapping `oneOf` alternatives ("me" is both a string and
  the enum ["me"]) are read as `anyOf`, which is what the spec means.
- The status operations' `action` is required (the spec forgets to say so).
- An integer enum in an answer takes the values its own description lists: Get a meeting's
  `type` is described as "`1` instant, `2` scheduled, `3` recurring with no fixed time, `4` PMI
  Meeting, `8` recurring with a fixed time" but enumerated [1, 2, 3, 8], and Zoom does answer
  type 4 for a personal meeting ID meeting.
- Error answers get a schema: Zoom's `{"code": int, "message": str, "errors"?: [...]}` for the
  statuses the operation documents without a body (400, 404), plus the ones every operation can
  give but the spec lists only in its general docs: 400 (code 4711, a token without the scope;
  code 300, an invalid next_page_token), 401 (code 124), 429 (rate limits), 500, 502 and 503
  (502/503 may be a load balancer's HTML page). XML is allowed for errors because Zoom answers
  a request without `Accept: application/json` in XML.

The parsed subset is cached per spec file (parsing the full spec takes a moment).
"""

import copy
import functools
import json
import os
import re
from pathlib import Path

# (path template, method) of every operation the client and the sandbox speak.
OPERATIONS = (
    ("/meetings/{meetingId}/status", "put"),
    ("/webinars/{webinarId}/status", "put"),
    ("/past_meetings/{meetingId}", "get"),
    ("/past_meetings/{meetingId}/participants", "get"),
    ("/meetings/{meetingId}/livestream", "get"),
    ("/meetings/{meetingId}/livestream", "patch"),
    ("/meetings/{meetingId}/livestream/status", "patch"),
    ("/meetings/{meetingId}", "get"),
    ("/webinars/{webinarId}", "get"),
    ("/webinars/{webinarId}/livestream", "get"),
    ("/webinars/{webinarId}/livestream", "patch"),
    ("/webinars/{webinarId}/livestream/status", "patch"),
    ("/past_webinars/{webinarId}/instances", "get"),
    ("/users", "get"),
    ("/users/{userId}", "get"),
    ("/users/{userId}/meetings", "get"),
    ("/users/{userId}/webinars", "get"),
    ("/metrics/meetings", "get"),
)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
ERROR_CONTENT = {
    "application/json": {"schema": ERROR_SCHEMA},
    # openapi-core parses XML into an element tree: accept any, the JSON schema is the contract.
    "application/xml": {},
}
EXTRA_ERRORS = {
    "400": "Bad request: a token without the operation's scope (code 4711), an invalid field or "
    "next_page_token (code 300).",
    "401": "Invalid or expired access token (code 124).",
    "429": "Rate limited: Retry-After, X-RateLimit-Category, -Type, -Limit, -Remaining.",
    "500": "Zoom internal error.",
    "502": "Zoom's load balancer could not reach Zoom.",
    "503": "Zoom or its load balancer unavailable.",
}


SPEC_PATH = Path(__file__).resolve().parents[1] / "spec" / "zoom-meetings-api.json"


class SpecMissing(RuntimeError):
    pass


def default_spec_path():
    """settings.ZOOM_OPENAPI_SPEC when Django is configured, else $ZOOM_OPENAPI_SPEC, else the
    trimmed copy the repository carries."""
    try:
        from django.conf import settings

        if settings.configured and getattr(settings, "ZOOM_OPENAPI_SPEC", None):
            return Path(settings.ZOOM_OPENAPI_SPEC)
    except ImportError:  # pragma: no cover - the sandbox also runs without Django
        pass
    if os.environ.get("ZOOM_OPENAPI_SPEC"):
        return Path(os.environ["ZOOM_OPENAPI_SPEC"])
    return SPEC_PATH


_DESCRIBED_VALUE = re.compile(r"`(\d+)`\s*-")


def _complete_enums(node):
    """Add to each integer enum the values its description names (see the module doc)."""
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("type") == "integer" and isinstance(enum, list) and node.get("description"):
            for value in map(int, _DESCRIBED_VALUE.findall(node["description"])):
                if value not in enum:
                    enum.append(value)
        for value in node.values():
            _complete_enums(value)
    elif isinstance(node, list):
        for value in node:
            _complete_enums(value)


def extract_subset(spec):
    """The operations in OPERATIONS, as a small OpenAPI 3.0 document (see the module doc)."""
    paths = {}
    for template, method in OPERATIONS:
        operation = copy.deepcopy(spec["paths"][template][method])
        responses = operation.setdefault("responses", {})
        _complete_enums(responses)
        for status, response in responses.items():
            if status.startswith(("4", "5")) and "content" not in response:
                response["content"] = copy.deepcopy(ERROR_CONTENT)
        for status, description in EXTRA_ERRORS.items():
            if status not in responses:
                content = copy.deepcopy(ERROR_CONTENT)
                if status in ("502", "503"):
                    content["text/html"] = {"schema": {"type": "string"}}
                responses[status] = {"description": description, "content": content}
        for parameter in operation.get("parameters", ()):
            schema = parameter.get("schema", {})
            if "oneOf" in schema:
                # The spec's "oneOf" alternatives overlap ("me" is a string and the enum ["me"];
                # "123" fits both integer and string), so no value could pass exactly one.
                schema["anyOf"] = schema.pop("oneOf")
        schema = (
            operation.get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema", {})
        )
        if "action" in schema.get("properties", {}):
            # A status change without "action" asks for nothing; Zoom answers it with code 300.
            schema.setdefault("required", ["action"])
        operation["security"] = [{"OAuth": []}]
        paths.setdefault(template, {})[method] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": spec["info"]["title"] + " (the operations zoomadmin uses)",
            "version": spec["info"]["version"],
        },
        "servers": [{"url": "/v2"}],
        "paths": paths,
        "components": {"securitySchemes": {"OAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"OAuth": []}],
    }


@functools.lru_cache(maxsize=4)
def load_subset(spec_path):
    path = Path(spec_path)
    if not path.is_file():
        raise SpecMissing(
            f"Zoom's OpenAPI spec is not at {path}: set ZOOM_OPENAPI_SPEC to it, or unset it to "
            f"use the copy the repository carries ({SPEC_PATH})."
        )
    with path.open(encoding="utf-8") as f:
        return extract_subset(json.load(f))


@functools.lru_cache(maxsize=4)
def openapi_for(spec_path):
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(load_subset(str(spec_path)))


def _describe(exc):
    """An openapi-core error with its causes, in one line."""
    parts = [str(exc)]
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    schema_errors = getattr(exc, "schema_errors", None)
    if schema_errors:
        parts.extend(e.message for e in schema_errors)
    for inner in getattr(exc, "errors", None) or ():
        parts.append(_describe(inner))
    unique = []
    for part in parts:
        if part and not any(part in seen for seen in unique):
            unique.append(part)
    return ": ".join(unique)


def _openapi_request(request):
    """openapi-core's view of a werkzeug request, with the path as sent: werkzeug decodes %2F
    into "/", which would split a UUID like "ab/cd==" (legitimately encoded once) in two."""
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest

    from .api import raw_path_of

    class RawPathRequest(WerkzeugOpenAPIRequest):
        @property
        def path(self):
            return raw_path_of(self.request.environ)

    return RawPathRequest(request)


class ContractChecker:
    """Validates werkzeug requests and responses against the spec subset."""

    def __init__(self, spec_path=None):
        self.spec_path = str(spec_path or default_spec_path())
        self.openapi = openapi_for(self.spec_path)

    def check_request(self, request):
        """Problems with a /v2 request (a werkzeug Request): [] when it keeps the contract."""
        try:
            self.openapi.validate_request(_openapi_request(request))
        except Exception as exc:  # openapi-core raises one of many ValidationError kinds
            return [_describe(exc)]
        return []

    def check_response(self, request, response):
        """Problems with the answer (a werkzeug Response) to `request`."""
        from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse

        try:
            self.openapi.validate_response(
                _openapi_request(request), WerkzeugOpenAPIResponse(response)
            )
        except Exception as exc:
            return [_describe(exc)]
        return []
