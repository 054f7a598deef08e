"""The bench's table and JSON (bench/figures.py, bench/platform.py's Burst) on made-up figures: no timing."""

from __future__ import annotations

import json
import math

from rich.console import Console

from bench.figures import Row, document, fmt, percentile, render, spread, write_json
from bench.platform import Burst


def test_a_row_with_a_baseline_has_its_ratio():
    row = Row("append", "append", 300.0, "events/s", baseline=600.0, goal=0.9, goal_label="×0.9 of raw")
    assert row.ratio == 0.5
    assert row.met is False  # a goal written as a ratio compares the ratio


def test_a_goal_on_the_value_compares_the_value_either_way():
    assert Row("p99", "p99", 120.0, "ms", goal=150, goal_label="≤ 150 ms", higher_is_better=False).met is True
    assert Row("rate", "rate", 5.5, "/s", goal=50, goal_label="≥ 50/s").met is False


def test_a_goal_with_a_range_is_met_only_inside_it():
    linear = Row("lin", "linear", 90.0, baseline=100.0, goal=0.8, goal_max=1.2, goal_label="×0.8–1.2")
    quadratic = Row("lin", "linear", 10.0, baseline=100.0, goal=0.8, goal_max=1.2, goal_label="×0.8–1.2")
    assert (linear.met, quadratic.met) == (True, False)


def test_a_row_without_a_figure_meets_nothing_and_shows_a_dash():
    row = Row("rate", "rate", math.nan, "/s", goal=50, goal_label="≥ 50/s")
    assert row.met is None and row.ratio is None
    assert fmt(row.value) == "—"


def test_the_table_shows_every_row_and_says_which_were_skipped():
    rows = [
        Row("rate", "burst rate", 5.4, "complaints/s", goal=50, goal_label="≥ 50/s"),
        Row("rebuild_200k", "rebuild 200k", skipped="skipped: --full", goal_label="×0.5"),
    ]
    console = Console(width=200, record=True)
    console.print(render("bench", rows))
    text = console.export_text()
    assert "burst rate" in text and "5.40 complaints/s" in text
    assert "skipped: --full" in text


def test_the_json_has_every_row_with_its_verdict_and_no_nan(tmp_path):
    rows = [Row("a", "a", 1.0, baseline=2.0), Row("b", "b", math.nan)]
    path = write_json(tmp_path, "stamp", document(rows, {"machine": {"cores": 2}}))
    doc = json.loads(path.read_text())
    assert [r["key"] for r in doc["rows"]] == ["a", "b"]
    assert doc["rows"][0]["ratio"] == 0.5 and doc["rows"][1]["value"] is None
    assert (tmp_path / "latest.json").read_text() == path.read_text()


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert spread(values) == {"p50": 50, "p95": 95, "p99": 99}


def test_a_burst_counts_what_was_dialled_lost_twice_and_shed():
    records = [
        {
            "phone": "+1555000001",
            "started": 100.0,
            "clicked": 100.1,
            "answered": 100.2,
            "file_status": 201,
            "call_status": 202,
        },
        {
            "phone": "+1555000002",
            "started": 100.5,
            "clicked": 100.6,
            "answered": 100.7,
            "file_status": 201,
            "call_status": 202,
        },
        {
            "phone": "+1555000003",
            "started": 101.0,
            "clicked": 101.1,
            "answered": 101.2,
            "file_status": 201,
            "call_status": 202,
        },
        {"phone": "+1555000004", "started": 101.5, "file_status": 429, "file_retry_after": "3"},
    ]
    calls = {"+1555000001": [100.6], "+1555000002": [101.6, 102.0]}
    figures = Burst(records, calls, ended=101.3).figures()
    assert (figures["sent"], figures["accepted"], figures["dialled"], figures["lost"]) == (4, 3, 2, 1)
    assert figures["dialled_twice"] == 1
    assert (figures["shed"], figures["shed_with_retry_after"]) == (1, 1)
    assert math.isclose(figures["click_to_call_ms"]["p50"], 500.0)
    assert math.isclose(figures["dialled_per_s"], 2 / 1.6)


def test_a_goal_with_two_conditions_is_met_only_when_both_are():
    """The low-load row: p99 ≤ 150 ms *and* ≤ ×1 of its baseline (it printed ✓ on the first alone)."""

    def low_load(p99_ms: float, baseline_ms: float) -> Row:
        return Row(
            "low_load_p99",
            "low load: click → call p99",
            p99_ms,
            "ms",
            baseline=baseline_ms,
            goal=150,
            ratio_goal=1,
            goal_label="≤ 150 ms and ≤ ×1 of baseline",
            higher_is_better=False,
        )

    assert low_load(142, 39).met is False, "under 150 ms but ×3.6 of its baseline"
    assert low_load(160, 200).met is False, "within its baseline but over 150 ms"
    assert low_load(35, 39).met is True
