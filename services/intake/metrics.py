"""The supervisors' customer-experience metrics over HTTP: ``/api/metrics/…`` (figures and breaches).

Thin edges over the ``experience_facts`` read model and the pure ``experience`` module: read a
window of case facts, compute, answer. Supervisors only: the figures name agents and teams.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from services.intake.experience import Breach, Dimension, Period, Row, breaches, figures, period_of
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

Days = Annotated[int, Query(ge=1, le=400, description="How many days back, counting today (UTC), the cases "
                            "were filed.", examples=[28])]


class FiguresAnswer(BaseModel):
    """The figures per period, and per value of the breakdown if one was asked for."""

    period: Period = Field(description="day: UTC days; week: ISO weeks (Monday to Sunday).", examples=["week"])
    by: Dimension | None = Field(description="The breakdown, if any.", examples=["team"])
    since: datetime = Field(description="The first moment of the window (a UTC midnight).",
                            examples=["2026-02-15T00:00:00Z"])
    computed_at: datetime = Field(description="When the figures were computed (late and overdue are as of then).",
                                  examples=["2026-03-14T09:00:00Z"])
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


@api.get("/figures", summary="Customer-experience figures per day or week, optionally broken down.",
         description="Computed from the log (intake's `experience_facts` read model) for the cases filed in the "
                     "window; each figure is defined in the README, \"Customer-experience metrics\". "
                     "A case counts in the period its complaint was filed.")
async def get_figures(svc: Svc, period: Annotated[Period, Query(description="day or week.")] = "day",
                      by: Annotated[Dimension | None, Query(description="Break the figures down by category, "
                                                            "channel, partner team or agent.")] = None,
                      days: Days = 28) -> FiguresAnswer:
    return await figures_now(svc.runtime.store.db, period, by, days)


@api.get("/breaches", summary="Open cases that breach: waiting for a human, partner SLA overdue, disputed closure.",
         description="Longest first, from the cases filed in the window.")
async def get_breaches(svc: Svc, days: Days = 28,
                       limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 50
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
