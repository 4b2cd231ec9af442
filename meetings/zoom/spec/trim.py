"""
Trim Zoom's OpenAPI description to the paths this project speaks, and write it beside this file.

Zoom's full Meetings API description (2.7 MB, 211 paths) is reading material, not something the
project loads: the sandbox and the contract tests validate against `zoom-meetings-api.json`, the
subset this script writes. Run it again when the project starts to use another path:

    python meetings/zoom/spec/trim.py /path/to/ZoomMeetingAPISpec.json

Source of the copy this subset was made from: Zoom's own OpenAPI 3.0 description "Zoom Meeting
API" 2.0.0 (server https://api.zoom.us/v2), as published in the public repository
tommyhuangli/zoom-link-generator, file ZoomMeetingAPISpec.json, commit
c3d029976e6d5e19c16023bc1add6608605bc3a4 (July 2023). Zoom keeps no current spec in a repository of
its own. Every operation of each kept path is copied unchanged (all its methods, so a method the
project adopts later is already here); the adjustments the contract checker needs are made at
load time in `meetings/zoom/sandbox/contract.py`, not in this file.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "zoom-meetings-api.json"

# Every path the client, the sandbox or a planned feature uses. Keep sorted.
PATHS = (
    "/meetings/{meetingId}",
    "/meetings/{meetingId}/livestream",
    "/meetings/{meetingId}/livestream/status",
    "/meetings/{meetingId}/status",
    "/metrics/meetings",
    "/metrics/meetings/{meetingId}",
    "/metrics/meetings/{meetingId}/participants",
    "/past_meetings/{meetingId}",
    "/past_meetings/{meetingId}/instances",
    "/past_meetings/{meetingId}/participants",
    "/past_webinars/{webinarId}/instances",
    "/past_webinars/{webinarId}/participants",
    "/users",
    "/users/{userId}",
    "/users/{userId}/meetings",
    "/users/{userId}/webinars",
    "/webinars/{webinarId}",
    "/webinars/{webinarId}/livestream",
    "/webinars/{webinarId}/livestream/status",
    "/webinars/{webinarId}/status",
)


def _refs(node):
    """Every "$ref" in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def trim(spec):
    paths = {path: spec["paths"][path] for path in PATHS}
    components = {}
    pending = list(_refs(paths))
    while pending:  # the components the kept paths reference, and theirs in turn
        ref = pending.pop()
        if not ref.startswith("#/components/"):
            raise ValueError(f"unexpected reference {ref}")
        _, _, kind, name = ref.split("/", 3)
        if name in components.setdefault(kind, {}):
            continue
        components[kind][name] = spec["components"][kind][name]
        pending.extend(_refs(components[kind][name]))
    components["securitySchemes"] = spec["components"]["securitySchemes"]
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec["servers"],
        "x-zoomadmin-source": (
            "tommyhuangli/zoom-link-generator ZoomMeetingAPISpec.json at "
            "c3d029976e6d5e19c16023bc1add6608605bc3a4, trimmed by meetings/zoom/spec/trim.py"
        ),
        "paths": paths,
        "components": components,
        "security": spec.get("security", []),
    }


def main(argv):
    if len(argv) != 2:
        sys.exit(f"usage: {argv[0]} /path/to/ZoomMeetingAPISpec.json")
    with open(argv[1], encoding="utf-8") as f:
        subset = trim(json.load(f))
    OUTPUT.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(subset['paths'])} paths, {OUTPUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv)
