"""
zoomadmin's benchmarks (issue 7): `make bench` runs them all and prints one table of figures and
ratios measured side by side in one run; `python -m bench NAME ...` runs some of them; `make load`
runs the load test. BENCHMARKS.md has the results and the exact commands.

Each benchmark is a module with `run(ctx) -> Result` and runs in a child process of its own, with
the environment of its profile:

- service: PostgreSQL (`BENCH_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/bench,
  created if missing and emptied first) and Redis (`BENCH_REDIS_URL`, default
  redis://127.0.0.1:6379/8);
- embedded: SQLite and the filesystem broker under var/bench/embedded (click to Zoom only).

It starts what it measures as real processes (the Zoom sandbox with `manage.py zoom_sandbox`,
Celery workers, gunicorn), measures, and stops them all, also when it fails or is interrupted.
Settings are production's (DEBUG off, fresh random secrets per run) so that what is measured is
what would be deployed.
"""

# The default set, in the order `make bench` runs them. `load` runs only when named.
BENCHMARKS = (
    "bulk_end",
    "meetings_list",
    "sync",
    "click_to_zoom",
    "webhooks",
    "bulk_post",
    "sweeper",
    "schedules",
)
EXTRA = ("load",)
