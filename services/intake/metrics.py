"""The supervisors' customer-experience metrics over HTTP: ``/api/metrics/…`` (figures and breaches).

Thin edges over the ``experience_facts`` read model and the pure ``experience`` module: read a
window of case facts, compute, answer. Supervisors only: the figures name agents and teams.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from pydantic import BaseModel, Field

from services.intake.experience import (
    Breach,
    Dimension,
    Period,
    Row,
    breaches,
    call_me_to_connected,
    figures,
    period_of,
    to_first_human,
)
from services.intake.handlers import Svc
from services.intake.projections import ExperienceFacts
from services.kernel.web import answers, token_claims


@answers(403)
def supervisor(token: Annotated[dict, Depends(token_claims)]) -> dict:
    """FastAPI dependency: a supervisor's token naming who (``sub``); 403 for anyone else."""
    if token.get("role") != "supervisor" or not isinstance(token.get("sub"), str) or not token["sub"]:
        raise HTTPException(403, {"message": "Authorization: the metrics are for supervisors only"})
    return token


api = APIRouter(prefix="/api/metrics", tags=["metrics"], dependencies=[Depends(supervisor)])

Days = Annotated[
    int,
    Query(ge=1, le=400, description="How many days back, counting today (UTC), the cases were filed.", examples=[28]),
]


class FiguresAnswer(BaseModel):
    """The figures per period, and per value of the breakdown if one was asked for."""

    period: Period = Field(
        description="day: UTC days; week: ISO weeks (Monday to Sunday); window: the whole window as one period.",
        examples=["week"],
    )
    by: Dimension | None = Field(description="The breakdown, if any.", examples=["team"])
    since: datetime = Field(
        description="The first moment of the window (a UTC midnight).", examples=["2026-02-15T00:00:00Z"]
    )
    computed_at: datetime = Field(
        description="When the figures were computed (late and overdue are as of then).",
        examples=["2026-03-14T09:00:00Z"],
    )
    rows: list[Row] = Field(description="Oldest period first; within a period, by the breakdown's value.")


class BreachesAnswer(BaseModel):
    """The open cases a supervisor should look at now, longest first."""

    computed_at: datetime = Field(description="When the list was made.", examples=["2026-03-14T09:00:00Z"])
    breaches: list[Breach]


def window(days: int, now: datetime) -> datetime:
    return datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), UTC)


async def figures_now(db, period: Period, by: Dimension | None, days: int) -> FiguresAnswer:
    """The figures of the cases filed in the last ``days`` days."""
    now = datetime.now(UTC)
    since = window(days, now)
    facts = await ExperienceFacts(db).since(since.isoformat())
    first = period_of(since.isoformat(), period)  # people's held-back messages go further back
    rows = [r for r in figures(facts, now, period, by) if r.period >= first]
    return FiguresAnswer(period=period, by=by, since=since, computed_at=now, rows=rows)


@api.get(
    "/figures",
    summary="Customer-experience figures per day or week, optionally broken down.",
    description="Computed from the log (intake's `experience_facts` read model) for the cases filed in the "
    'window; each figure is defined in the README, "Customer-experience metrics". '
    "A case counts in the period its complaint was filed.",
)
async def get_figures(
    svc: Svc,
    period: Annotated[Period, Query(description="day, week, or window (the whole window at once).")] = "day",
    by: Annotated[
        Dimension | None, Query(description="Break the figures down by category, channel, partner team or agent.")
    ] = None,
    days: Days = 28,
) -> FiguresAnswer:
    return await figures_now(svc.runtime.store.db, period, by, days)


@api.get(
    "/breaches",
    summary="Open cases that breach: waiting for a human, partner SLA overdue, disputed closure.",
    description="Longest first, from the cases filed in the window.",
)
async def get_breaches(
    svc: Svc, days: Days = 28, limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 50
) -> BreachesAnswer:
    now = datetime.now(UTC)
    facts = await ExperienceFacts(svc.runtime.store.db).since(window(days, now).isoformat())
    return BreachesAnswer(computed_at=now, breaches=breaches(facts, now, limit))


async def figures_in(db, period: str, by: str | None, days: int) -> dict:
    """For ``complaints metrics``: the same answer as ``GET /api/metrics/figures``, as JSON data."""
    asked = MetricsQuery.model_validate({"period": period, "by": by, "days": days})  # ValueError names the option
    return (await figures_now(db, asked.period, asked.by, asked.days)).model_dump(mode="json")


class MetricsQuery(BaseModel):
    period: Period
    by: Dimension | None
    days: int = Field(ge=1, le=400)


# --- Prometheus: the same figures, for the cluster's dashboards and alerts ---------------------------

#: Histogram buckets in seconds: from a call picked up at once to a written case taken the next day.
BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
COUNTS = (
    "cases",
    "proactive",
    "resolved",
    "first_contact_resolved",
    "closure_asked",
    "confirmed",
    "disputed",
    "unanswered",
    "reopened_7d",
    "reopened_30d",
    "held_back",
    "escalated_repeated_contacts",
    "escalated_notification_blocked",
    "escalated_sla_breach",
)
RATIOS = {
    "first_contact_resolution": "first_contact_resolution_rate",
    "confirmed": "confirmed_rate",
    "disputed": "disputed_rate",
    "unanswered": "unanswered_rate",
    "reopened_7d": "reopen_rate_7d",
    "reopened_30d": "reopen_rate_30d",
}


def _observe(family, labels: list[str], seconds: list[float]) -> None:
    buckets = [(str(float(b)), sum(1 for s in seconds if s <= b)) for b in BUCKETS] + [("+Inf", len(seconds))]
    family.add_metric(labels, buckets, sum(seconds))


class FiguresCollector:
    """Renders the figures last read (``refresh``) as Prometheus gauges and histograms, over the
    cases filed in the last ``days`` days. Agents are not a label: names and cardinality stay out."""

    def __init__(self, db, days: int) -> None:
        self.facts, self.days, self.read = ExperienceFacts(db), days, None

    async def refresh(self) -> None:
        now = datetime.now(UTC)
        facts = await self.facts.since(window(self.days, now).isoformat())
        overall = figures(facts, now, "window")
        self.read = {
            "figures": overall[0].figures if overall else None,
            "teams": [r for r in figures(facts, now, "window", "team") if r.group != "(none)"],
            "calls": call_me_to_connected(facts),
            "human": {
                ch: to_first_human(f for f in facts if f["channel"] == ch)
                for ch in sorted({f["channel"] for f in facts if f["channel"]})
            },
        }

    def collect(self):
        if self.read is None or self.read["figures"] is None:
            return
        f, window_days = self.read["figures"], str(self.days)
        counts = GaugeMetricFamily(
            "complaints_experience_count",
            "Customer-experience counts over the cases filed "
            "in the last window_days days (README, Customer-experience metrics).",
            labels=["figure", "window_days"],
        )
        for name in COUNTS:
            counts.add_metric([name, window_days], getattr(f, name))
        yield counts
        ratios = GaugeMetricFamily(
            "complaints_experience_ratio",
            "Customer-experience rates (0 to 1) over the same cases; absent when nothing could have happened yet.",
            labels=["figure", "window_days"],
        )
        for name, field in RATIOS.items():
            if getattr(f, field) is not None:
                ratios.add_metric([name, window_days], getattr(f, field))
        yield ratios
        if f.contacts_per_resolution is not None:
            yield GaugeMetricFamily(
                "complaints_experience_contacts_per_resolution",
                "Contacts of the resolved cases per resolved case.",
                value=f.contacts_per_resolution,
            )
        partners = GaugeMetricFamily(
            "complaints_experience_partner_transfers",
            "Transfers to partner teams by step and whether it came by its due time.",
            labels=["team", "step", "timing", "window_days"],
        )
        for row in self.read["teams"]:
            t = row.figures
            for step, on_time, late in (
                ("acknowledgement", t.partner_acknowledged_on_time, t.partner_acknowledged_late),
                ("outcome", t.partner_outcome_on_time, t.partner_outcome_late),
            ):
                partners.add_metric([row.group, step, "on_time", window_days], on_time)
                partners.add_metric([row.group, step, "late", window_days], late)
        yield partners
        calls = HistogramMetricFamily(
            "complaints_experience_call_me_to_connected_seconds",
            'From "call me" to the call connected, per connected callback.',
            labels=["window_days"],
        )
        _observe(calls, [window_days], self.read["calls"])
        yield calls
        human = HistogramMetricFamily(
            "complaints_experience_first_human_seconds",
            "From filing to the first human contact, per case contacted, by channel.",
            labels=["channel", "window_days"],
        )
        for channel, seconds in self.read["human"].items():
            _observe(human, [channel, window_days], seconds)
        yield human


def export_figures(app, db, days: int) -> None:
    """Intake's /metrics carries the figures, read again before each scrape."""
    collector = FiguresCollector(db, days)
    app.state.prometheus.registry.register(collector)
    app.state.prometheus.before_scrape(collector.refresh)
