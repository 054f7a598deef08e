"""The bench's one table: each goal of issue 14 as a row, beside its baseline from the same run.

Pure: rows in, a rich table and a JSON document out (tests/unit/test_bench_figures.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from rich.table import Table


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 500 samples is the 495th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values_ms: list[float]) -> dict[str, float]:
    """p50, p95, p99 of latencies in ms."""
    return {name: percentile(values_ms, q) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


@dataclass
class Row:
    """One figure of the table.

    ``value`` and ``baseline`` are numbers in ``unit`` (the baseline may be in its own unit);
    ``ratio`` is value / baseline unless set; ``higher_is_better`` says how ``goal`` compares.
    ``skipped`` (e.g. "skipped: --full") replaces the figure when the row was not run.
    """

    key: str
    measure: str
    value: float | None = None
    unit: str = ""
    detail: str = ""
    baseline: float | None = None
    baseline_unit: str = ""
    baseline_label: str = ""
    ratio: float | None = None
    goal: float | None = None
    goal_max: float | None = None
    #: A second goal on the ratio, both to be met (the low-load row: ≤ 150 ms and ≤ ×1 of its baseline).
    ratio_goal: float | None = None
    goal_label: str = ""
    higher_is_better: bool = True
    skipped: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and _number(self.value) and _number(self.baseline) and self.baseline:
            self.ratio = self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether the goal is reached (None without a goal or a figure). A goal on the ratio
        (``goal_label`` starting with "×") compares the ratio, any other the value."""
        compared = self.ratio if self.goal_label.startswith(("×", "x ")) else self.value
        if self.goal is None or not _number(compared):
            return None
        if self.goal_max is not None:
            return self.goal <= compared <= self.goal_max
        met = compared >= self.goal if self.higher_is_better else compared <= self.goal
        if self.ratio_goal is not None:
            if not _number(self.ratio):
                return None
            ratio = cast(float, self.ratio)
            met = met and (ratio >= self.ratio_goal if self.higher_is_better else ratio <= self.ratio_goal)
        return met


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: float | None, unit: str = "") -> str:
    """A figure for people: thousands separated, fewer decimals as it grows."""
    if not _number(value):
        return "—"
    magnitude = abs(value)
    text = (
        f"{value:,.0f}"
        if magnitude >= 100
        else f"{value:,.1f}"
        if magnitude >= 10
        else f"{value:,.2f}"
        if magnitude >= 0.1 or magnitude == 0
        else f"{value:.3g}"
    )
    return f"{text} {unit}".strip()


def render(title: str, rows: list[Row], caption: str = "") -> Table:
    """The one table: measure, figure, baseline of the same run, ratio, goal (✓ reached)."""
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left", show_lines=False)
    table.add_column("measure", overflow="fold")
    table.add_column("today (this run)", overflow="fold")
    table.add_column("baseline, same run", overflow="fold")
    table.add_column("ratio", justify="right")
    table.add_column("goal", overflow="fold")
    for row in rows:
        if row.skipped:
            table.add_row(row.measure, f"[dim]{row.skipped}[/dim]", "", "", row.goal_label)
            continue
        figure = fmt(row.value, row.unit) + (f"  ({row.detail})" if row.detail else "")
        baseline = (
            f"{row.baseline_label} {fmt(row.baseline, row.baseline_unit or row.unit)}".strip()
            if row.baseline_label or _number(row.baseline)
            else "—"
        )
        ratio = f"×{fmt(row.ratio)}" if _number(row.ratio) else "—"
        mark = {True: " [green]✓[/green]", False: " [red]✗[/red]", None: ""}[row.met]
        table.add_row(row.measure, figure, baseline, ratio, f"{row.goal_label}{mark}")
    return table


def document(rows: list[Row], meta: dict[str, Any]) -> dict[str, Any]:
    """The run as JSON: its context and every row with its baseline, ratio and goal."""
    return {"meta": meta, "rows": [{**asdict(row), "met": row.met} for row in rows]}


def write_json(folder: Path, stamp: str, doc: dict[str, Any]) -> Path:
    """``<folder>/bench-<stamp>.json`` and ``<folder>/latest.json`` (the same content)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{stamp}.json"
    text = json.dumps(clean(doc), indent=2, default=_jsonable, allow_nan=False)
    path.write_text(text)
    (folder / "latest.json").write_text(text)
    return path


def _jsonable(value: Any) -> Any:
    return str(value)


def clean(doc: Any) -> Any:
    """NaN and infinities as null: JSON has neither."""
    if isinstance(doc, dict):
        return {k: clean(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [clean(v) for v in doc]
    if isinstance(doc, float) and not math.isfinite(doc):
        return None
    return doc
