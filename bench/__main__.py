"""
`python -m bench [NAME ...]`: run benchmarks and print their figures side by side.

    python -m bench                    # the six of `make bench`, ~9 minutes
    python -m bench bulk_end sync      # some of them
    python -m bench load               # the load test (`make load`)
    python -m bench --list

Each benchmark runs in a child process with its profile's environment (see bench/__init__.py);
this parent collects their results and prints one table. BENCH_DATABASE_URL / BENCH_REDIS_URL
(or --database-url / --redis-url) choose the service profile's servers.
"""

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from . import BENCHMARKS, EXTRA
from .harness import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PYTHON,
    ROOT,
    VAR,
    BenchError,
    Context,
    Process,
    Result,
    base_env,
    check_bench_database,
    ensure_postgres_database,
    kill_groups_in,
    machine_description,
    new_secrets,
    prepare_database,
    purge_broker,
    render,
    write_json,
)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="zoomadmin's benchmarks (issue 7)"
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: {' '.join(BENCHMARKS)}; also: {' '.join(EXTRA)})",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database for the service profile; emptied first (default %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis for the service profile (default %(default)s)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--users", type=int, default=50, help="load: simulated operators")
    parser.add_argument("--duration", type=int, default=60, help="load: seconds of load")
    # The parent runs each benchmark as `python -m bench --child NAME --profile P ...`.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        return child(args)
    if args.list:
        for name in (*BENCHMARKS, *EXTRA):
            module = importlib.import_module(f"bench.{name}")
            print(f"{name:15} {module.TITLE}  [{', '.join(module.PROFILES)}]")
        return 0
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in (*BENCHMARKS, *EXTRA)]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    try:
        check_bench_database(args.database_url)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2

    # `kill` (or a CI timeout) stops the run as Ctrl-C does: each child stops what it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started_at = datetime.now(UTC)
    machine = machine_description()
    print(f"zoomadmin benchmarks, {started_at:%Y-%m-%d %H:%M} UTC, {machine}", flush=True)
    print(f"service profile: {args.database_url} + {args.redis_url}", flush=True)
    secrets = new_secrets()
    results = []
    try:
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            for profile in module.PROFILES:
                print(f"- {name} ({profile} profile) ...", file=sys.stderr, flush=True)
                results.append(run_child(args, module, name, profile, secrets))
    except KeyboardInterrupt:
        print("bench: interrupted; what it started was stopped", file=sys.stderr)
        return 130
    print(f"\nzoomadmin benchmarks, {started_at:%Y-%m-%d %H:%M} UTC, {machine}")
    print(render(results))
    if args.json:
        write_json(
            args.json,
            {
                "started_at": started_at.isoformat(),
                "machine": machine,
                "command": "python -m bench " + " ".join(sys.argv[1:]),
                "results": [r.as_json() for r in results],
            },
        )
    return 1 if any(r.error for r in results) else 0


def run_child(args, module, name, profile, secrets):
    service = profile == "service"
    env = base_env(
        secrets,
        profile,
        database_url=args.database_url if service else "",
        redis_url=args.redis_url if service else "",
    )
    results_dir = VAR / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    result_file = results_dir / f"{name}-{profile}.json"
    pid_file = Path(f"{result_file}.pids")
    for path in (result_file, pid_file):
        path.unlink(missing_ok=True)
    argv = [
        PYTHON,
        "-m",
        "bench",
        "--child",
        name,
        "--profile",
        profile,
        "--result-file",
        str(result_file),
        "--users",
        str(args.users),
        "--duration",
        str(args.duration),
    ]
    limit = module.timeout(args) if hasattr(module, "timeout") else module.TIMEOUT
    started = time.monotonic()
    popen = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
    clean = False
    try:
        popen.wait(timeout=limit)
        clean = True
    except subprocess.TimeoutExpired:
        print(f"  {name}: over {limit} s, stopping it", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print(f"  {name}: interrupted, stopping it", file=sys.stderr, flush=True)
        _stop_child(popen)
        kill_groups_in(pid_file)
        raise
    finally:
        if not clean:
            _stop_child(popen)
            kill_groups_in(pid_file)
    try:
        return Result.from_json(json.loads(result_file.read_text()))
    except (OSError, ValueError, TypeError):
        return Result(
            name,
            module.TITLE,
            profile,
            error=f"the benchmark stopped without a result (exit {popen.returncode}, "
            f"after {time.monotonic() - started:.0f} s; logs in var/bench/logs/)",
            seconds=time.monotonic() - started,
        )


def _stop_child(popen):
    """SIGTERM the child (it stops what it started), then SIGKILL its group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(timeout=40)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=10)


def child(args):
    """Run one benchmark in this process (the parent set the profile's environment)."""
    name, profile = args.child, args.profile
    module = importlib.import_module(f"bench.{name}")
    Process.pid_file = f"{args.result_file}.pids"

    def _terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    result = None
    # The processes a benchmark starts log at INFO, as deployed; this one only says what failed.
    env = dict(os.environ)
    os.environ["LOG_LEVEL"] = "WARNING"
    try:
        _prepare_profile(profile)
        ctx = Context(name, profile, env)
        result = module.run(ctx, args)
    except BaseException as e:
        traceback.print_exc()
        result = Result(name, module.TITLE, profile, error=f"{type(e).__name__}: {e}")
        if not isinstance(e, Exception):
            raise
    finally:
        Process.stop_all()
        if result is not None:
            result.profile = profile
            result.seconds = time.monotonic() - started
            write_json(args.result_file, result.as_json())
    return 0 if not result.error else 1


def _prepare_profile(profile):
    var_dir = Path(os.environ["ZOOMADMIN_VAR_DIR"])
    prometheus = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if profile == "service":
        ensure_postgres_database(os.environ["DATABASE_URL"])
    else:
        # A fresh SQLite file and broker folder each run.
        for path in var_dir.glob("zoomadmin.sqlite3*"):
            path.unlink()
        _empty(var_dir / "broker")
    _empty(prometheus)
    prometheus.mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    prepare_database(profile)
    purge_broker()


def _empty(folder):
    import shutil

    if folder.exists():
        shutil.rmtree(folder)


if __name__ == "__main__":
    sys.exit(main())
