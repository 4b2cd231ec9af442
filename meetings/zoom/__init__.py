"""
Everything that speaks HTTP to Zoom, and nothing else does.

- `client.ZoomClient`: one method per Zoom operation the dashboard uses.
- `errors`: the `ZoomError` hierarchy (each error says whether it is permanent).
- `types`: the small typed objects Zoom's answers are parsed into.
- `oauth`: sessions, token storage and the serialised refresh.
- `sandbox`: the Zoom stand-in the demo and the tests run against.

This package imports nothing on its own, so `meetings.zoom.sandbox` can be used without Django.
"""
