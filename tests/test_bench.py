"""The benchmarks' own arithmetic and safety rails (bench/): the figures `make bench` prints are
only as good as the code that computes them. The benchmarks themselves run with `make bench`."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench import BENCHMARKS, EXTRA, bulk_end, harness
from bench.harness import BenchError, Result
from bench.sync import WriteCounter

ROOT = Path(__file__).resolve().parent.parent


def test_percentile_is_a_measured_value_by_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert harness.percentile(values, 95) == 95.0
    assert harness.percentile(values, 99) == 99.0
    assert harness.percentile([3.0, 1.0, 2.0], 95) == 3.0
    assert harness.percentile([7.0], 50) == 7.0


def test_median_and_percentile_of_nothing_are_not_a_number_not_zero():
    assert harness.median([]) != harness.median([])  # NaN
    assert harness.percentile([], 95) != harness.percentile([], 95)


def test_busiest_second_counts_requests_in_a_sliding_window_as_the_sandbox_does():
    # given: 30 requests evenly spaced over 0.99 s, then one more just after the first leaves
    times = [n * 0.99 / 29 for n in range(30)] + [1.0001]
    # then: the sandbox would have let all through (window [t - 1, t] holds at most 30)
    assert bulk_end.busiest_second(times) == 30
    # and one more inside the first second is 31 in a window: what Zoom answers 429 to
    assert bulk_end.busiest_second(sorted([*times, 0.5])) == 31
    assert bulk_end.busiest_second([]) == 0


class FakeSandbox:
    def __init__(self, log):
        self.log = log

    def requests_since(self, seq):
        return [r for r in self.log if r["seq"] > seq]


def _entry(seq, t, status=204, method="PUT", template="/meetings/{meetingId}/status", **headers):
    return {
        "seq": seq,
        "time": t,
        "status": status,
        "method": method,
        "template": template,
        "headers": headers,
        "duration_ms": 100.0,
    }


def test_achieved_rate_counts_light_requests_only_after_the_mark():
    log = [
        _entry(1, 0.0, 200, "GET", "/users"),  # Medium: a sync before the run
        _entry(2, 5.0, 204),  # before the mark
        *[_entry(3 + n, 10.0 + n / 27, 204) for n in range(28)],  # 28 requests, 27 gaps, 1 s
        _entry(40, 11.5, 429),
        _entry(41, 11.6, 200, "POST", ""),  # OAuth: not Light
    ]
    figures = bulk_end.measure(FakeSandbox(log), since=2)
    assert figures["requests"] == 29
    assert figures["n429"] == 1
    assert figures["rate"] == pytest.approx(28 / 1.5)
    assert figures["share"] == pytest.approx(28 / 1.5 / bulk_end.LIMIT)
    assert figures["slot_to_send"] == []


def test_the_ends_share_of_the_limit_counts_the_ends_alone_and_sees_a_look_among_them():
    # 29 ends over 1 s, with the looks after them; then one look sent among the ends
    ends = [_entry(1 + n, 10.0 + n / 28) for n in range(29)]
    looks = [_entry(40 + n, 11.5 + n / 28, 200, "GET", "/meetings/{meetingId}") for n in range(29)]
    figures = bulk_end.measure(FakeSandbox([*ends, *looks]), since=0)
    assert figures["ends_share"] == pytest.approx(28 / 1.0 / bulk_end.LIMIT)
    assert figures["requests"] == 58
    assert figures["gets"] == 29
    assert figures["ends_first"] is True

    early_look = _entry(99, 10.5, 200, "GET", "/meetings/{meetingId}")
    figures = bulk_end.measure(FakeSandbox([*ends, early_look]), since=0)
    assert figures["ends_first"] is False


def test_traced_requests_split_into_slot_to_send_and_send_to_zoom():
    # a request booked at 10.000, sent at 10.004, that reached the sandbox's app at 10.006 and
    # was logged after the 100 ms the sandbox made it wait
    traced = _entry(1, 10.106, **{"X-Bench-Slot": "10.0", "X-Bench-Send": "10.004"})
    figures = bulk_end.measure(FakeSandbox([traced]), since=0)
    assert figures["slot_to_send"] == [pytest.approx(0.004)]
    assert figures["send_to_zoom"] == [pytest.approx(0.002)]


def test_the_bench_refuses_a_database_not_named_for_it(monkeypatch):
    monkeypatch.delenv("BENCH_ALLOW_ANY_DATABASE", raising=False)
    harness.check_bench_database("postgres://postgres@127.0.0.1:5432/bench")
    harness.check_bench_database("postgres://postgres@127.0.0.1:5432/bench_ci")
    with pytest.raises(BenchError, match="empty their database"):
        harness.check_bench_database("postgres://postgres@127.0.0.1:5432/zoomadmin")


def test_write_counter_counts_writes_to_the_mirror_tables_only():
    counter = WriteCounter(("meetings_meeting",))

    def execute(sql, params, many, context):
        return sql

    for sql in (
        'INSERT INTO "meetings_meeting" ("zoom_id") VALUES (%s)',
        'UPDATE "meetings_meeting" SET "topic" = %s',
        'DELETE FROM "meetings_meeting" WHERE "id" = %s',
        'SELECT "id" FROM "meetings_meeting"',
        'UPDATE "meetings_zoomaccount" SET "last_sync_at" = %s',
    ):
        counter(execute, sql, (), False, {})
    assert counter.count == 3


def test_render_shows_figures_ratios_and_missed_targets():
    result = Result("x", "9. Something", profile="service", columns=["a", "b"], rows=[["r", 1]])
    result.ratios.append(("this ÷ that", "2.0×"))
    result.check("share", "0.90", ">= 0.95", False)
    result.check("429s", "0", "0", True)
    broken = Result("y", "10. Broken", profile="embedded", error="BenchError: no sandbox")
    text = harness.render([result, broken])
    assert "9. Something  [service profile]" in text
    assert "ratio: this ÷ that: 2.0×" in text
    assert "[MISSED] share: 0.90 (target >= 0.95)" in text
    assert "[ok ] 429s: 0 (target 0)" in text
    assert "NOT MEASURED: BenchError: no sandbox" in text
    assert "Targets: 1 of 2 met; missed: share; 1 benchmark(s) not measured" in text


def test_results_survive_the_trip_from_the_child_process():
    result = Result("x", "T", columns=["a"], rows=[["1"]])
    result.check("c", "1", "1", True)
    again = Result.from_json(result.as_json())
    assert again == result


def test_python_m_bench_lists_every_benchmark():
    listing = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for name in (*BENCHMARKS, *EXTRA):
        assert listing.count(f"{name} ") >= 1


def test_python_m_bench_refuses_an_unknown_benchmark_before_starting_anything():
    run = subprocess.run(
        [sys.executable, "-m", "bench", "no_such_bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "unknown benchmark(s): no_such_bench" in run.stderr
