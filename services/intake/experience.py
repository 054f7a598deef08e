"""What complainants lived through, as numbers: the pure part of the metrics (no I/O, no clock).

Two steps. ``record`` folds one public event into the facts of one case (a plain document, the
metrics read model stores it as is); ``figures`` and ``breaches`` read a set of case facts and
compute what a head of customer service looks at on Monday morning. Every figure is defined in
one sentence in the README ("Customer-experience metrics"); the definitions live here as code.

A case's figures count in the period (UTC day or ISO week) its complaint was filed, whenever the
later events came: a cohort, so that last week's numbers mean the cases of last week. A message
the loop guard held back that is about no case counts in the period it was held back.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from contracts.envelope import Event
from contracts.intake import CallbackRequested, Channel, ComplaintFiled, ComplaintLinked, CustomerMessageReceived
from contracts.notify import (
    ClosureConfirmationRequested,
    ComplaintClosedUnconfirmed,
    ComplaintReopened,
    CustomerConfirmedClosed,
    NotificationSuppressed,
)
from contracts.routing import (
    AgentAssigned,
    CallConnected,
    ComplaintResolved,
    Escalated,
    EscalationReason,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    TransferredToPartner,
)
from services.kernel.domain import Value

Period = Literal["day", "week", "window"]
Dimension = Literal["category", "channel", "team", "agent"]
#: The events the facts are made of (the projection ignores every other type).
RECORDED: tuple[type[Event], ...] = (
    ComplaintFiled,
    CallbackRequested,
    CustomerMessageReceived,
    ComplaintLinked,
    AgentAssigned,
    CallConnected,
    TransferredToPartner,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    ComplaintResolved,
    Escalated,
    ClosureConfirmationRequested,
    CustomerConfirmedClosed,
    ComplaintReopened,
    ComplaintClosedUnconfirmed,
    NotificationSuppressed,
)
#: Shown for a case with no value in a breakdown (never transferred, nobody assigned).
NONE = "(none)"


def _t(moment: datetime) -> str:
    """Times are stored as UTC ISO strings: they sort as they compare, in any store."""
    return moment.astimezone(UTC).isoformat()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def new_facts(key: str) -> dict[str, Any]:
    """The facts of a case (or, keyed by recipient, of a person no case is about) before any event."""
    return {
        "_id": key,
        "filed_at": None,
        "category": None,
        "channel": None,
        "status": "open",
        "callbacks": {},
        "first_human_at": None,
        "agent": None,
        "contacts": 0,
        "transfers": [],
        "resolved_at": None,
        "asks": [],
        "reopened_at": [],
        "held_back": [],
        "escalations": [],
    }


def record(facts: dict[str, Any], event: Event) -> dict[str, Any]:
    """The case's facts after one more event (a new document; ``facts`` is left as it was)."""
    f = {
        **facts,
        "callbacks": {k: dict(v) for k, v in facts["callbacks"].items()},
        "transfers": [dict(t) for t in facts["transfers"]],
        "asks": [dict(a) for a in facts["asks"]],
        "reopened_at": list(facts["reopened_at"]),
        "held_back": list(facts["held_back"]),
        "escalations": list(facts["escalations"]),
    }
    match event:
        case ComplaintFiled():
            f.update(
                filed_at=_t(event.filed_at),
                category=event.category.value,
                channel=event.channel.value,
                contacts=f["contacts"] + (event.channel != Channel.PROACTIVE),
            )
        case CallbackRequested():
            # setdefault: two logs, two orders; the connection may be read before the request
            f["callbacks"].setdefault(event.callback_id, {"connected_at": None})["requested_at"] = _t(
                event.requested_at
            )
            # "Call me now" with the filing is the same contact; asking again later is another.
            if f["filed_at"] and event.requested_at - _at(f["filed_at"]) > timedelta(minutes=1):
                f["contacts"] += 1
        case CustomerMessageReceived() | ComplaintLinked():
            f["contacts"] += 1
        case CallConnected():
            callback = f["callbacks"].setdefault(event.callback_id, {"requested_at": None, "connected_at": None})
            callback["connected_at"] = callback["connected_at"] or _t(event.connected_at)
            _first_human(f, event.connected_at)
            f["agent"] = event.agent_id
        case AgentAssigned():
            f["agent"] = event.agent_id
            if event.callback_id is None and not event.provisional:  # a call's contact is its connection
                _first_human(f, event.assigned_at)
        case TransferredToPartner():
            f["transfers"].append(
                {
                    "team": event.team_id,
                    "at": _t(event.transferred_at),
                    "due": _t(event.sla_due_at),
                    "outcome_due": _t(event.brief.promised_by or event.sla_due_at),
                    "acknowledged_at": None,
                    "outcome_at": None,
                }
            )
        case PartnerAcknowledged():
            _transfer_of(f, event.team_id, "acknowledged_at", event.acknowledged_at)
            _first_human(f, event.acknowledged_at)
        case PartnerOutcomeRecorded():
            _transfer_of(f, event.team_id, "outcome_at", event.recorded_at)
        case ComplaintResolved():
            f["resolved_at"] = f["resolved_at"] or _t(event.resolved_at)
            f["agent"] = event.agent_id
            _status(f, "resolved", event.resolved_at)
            _first_human(f, event.resolved_at)
        case Escalated():
            f["escalations"].append({"reason": event.reason.value, "at": _t(event.escalated_at)})
        case ClosureConfirmationRequested() if not event.reminder:
            f["asks"].append({"asked_at": _t(event.requested_at), "answer": None})
        case CustomerConfirmedClosed():
            _answer(f, "confirmed")
            _status(f, "closed", event.confirmed_at)
        case ComplaintReopened():
            _answer(f, "disputed")
            f["reopened_at"].append(_t(event.reopened_at))
            # "No, it is not solved" is the complainant having to reach us again.
            f["contacts"] += 1
            _status(f, "reopened", event.reopened_at)
        case ComplaintClosedUnconfirmed():
            _answer(f, "unanswered")
            _status(f, "closed", event.closed_at)
        case NotificationSuppressed():
            f["held_back"].append(_t(event.suppressed_at))
    return f


def _status(f: dict[str, Any], status: str, moment: datetime) -> None:
    """The case's status is the latest by the events' own times: routing's resolution and notify's
    answers come on different topics, read in no order across them (a "no" read before the
    resolution it answers would otherwise leave the case "resolved")."""
    if f.get("status_at") is None or _t(moment) >= f["status_at"]:
        f["status"], f["status_at"] = status, _t(moment)


def _first_human(f: dict[str, Any], moment: datetime) -> None:
    if f["first_human_at"] is None or _t(moment) < f["first_human_at"]:
        f["first_human_at"] = _t(moment)


def _transfer_of(f: dict[str, Any], team: str, field: str, moment: datetime) -> None:
    """The latest transfer to ``team`` gets the time, once (a repeat keeps the first)."""
    for transfer in reversed(f["transfers"]):
        if transfer["team"] == team:
            transfer[field] = transfer[field] or _t(moment)
            return


def _answer(f: dict[str, Any], answer: str) -> None:
    for ask in reversed(f["asks"]):
        if ask["answer"] is None:
            ask["answer"] = answer
            return


# --- figures ------------------------------------------------------------------------------------


class Spread(Value):
    """Durations in seconds: how many, and the nearest-rank percentiles."""

    count: int = Field(description="How many durations were measured.", examples=[42])
    p50: float | None = Field(description="Half took at most this long (seconds).", examples=[38.0])
    p90: float | None = Field(description="Nine in ten took at most this long (seconds).", examples=[95.0])
    p99: float | None = Field(description="99 in 100 took at most this long (seconds).", examples=[240.0])


class Figures(Value):
    """The figures of one group of cases (a period, and possibly one value of a breakdown)."""

    cases: int = Field(description="Complaints filed (proactive ones included).", examples=[120])
    proactive: int = Field(
        description="Cases we opened from a carrier exception before anyone complained.", examples=[6]
    )
    call_me_to_connected_s: Spread = Field(description='From "call me" to the call connected.')
    to_first_human_s: Spread = Field(description="From filing to the first human contact.")
    resolved: int = Field(description="Cases resolved at least once.", examples=[100])
    first_contact_resolved: int = Field(description="Resolved with no transfer and one contact only.", examples=[61])
    first_contact_resolution_rate: float | None = Field(
        description="first_contact_resolved / resolved.", examples=[0.61]
    )
    contacts_per_resolution: float | None = Field(
        description="Contacts of the resolved cases / resolved.", examples=[1.4]
    )
    closure_asked: int = Field(description='"Is this closed?" questions asked (reminders not counted).', examples=[95])
    confirmed: int = Field(description="Questions answered yes.", examples=[70])
    disputed: int = Field(description="Questions answered no.", examples=[9])
    unanswered: int = Field(description="Questions whose wait ran out with no answer.", examples=[11])
    confirmed_rate: float | None = Field(description="confirmed / closure_asked.", examples=[0.74])
    disputed_rate: float | None = Field(description="disputed / closure_asked.", examples=[0.09])
    unanswered_rate: float | None = Field(description="unanswered / closure_asked.", examples=[0.12])
    reopened_7d: int = Field(
        description="Resolved cases reopened within 7 days of their first resolution.", examples=[4]
    )
    reopened_30d: int = Field(
        description="Resolved cases reopened within 30 days of their first resolution.", examples=[7]
    )
    reopen_rate_7d: float | None = Field(description="reopened_7d / resolved.", examples=[0.04])
    reopen_rate_30d: float | None = Field(description="reopened_30d / resolved.", examples=[0.07])
    partner_acknowledged_on_time: int = Field(
        description="Transfers acknowledged by their SLA due time.", examples=[30]
    )
    partner_acknowledged_late: int = Field(
        description="Transfers acknowledged after their SLA due time, or not yet and past it.", examples=[3]
    )
    partner_outcome_on_time: int = Field(
        description="Transfers whose outcome came by the time promised (else the SLA due time).", examples=[28]
    )
    partner_outcome_late: int = Field(
        description="Transfers whose outcome came after that time, or not yet and past it.", examples=[5]
    )
    held_back: int = Field(description="Automated messages the loop guard held back.", examples=[12])
    escalated_repeated_contacts: int = Field(description="Escalations for repeated contacts.", examples=[2])
    escalated_notification_blocked: int = Field(
        description="Escalations because the loop guard held a message back and a human must step in.", examples=[1]
    )
    escalated_sla_breach: int = Field(description="Escalations of a silent partner team.", examples=[1])


class Row(Value):
    """The figures of one period, and of one value of the breakdown if one was asked for."""

    period: str = Field(
        description='The UTC day (2026-03-14), the ISO week (2026-W11), or "window" for the whole window asked for.',
        examples=["2026-W11"],
    )
    group: str | None = Field(
        description="The breakdown's value (a category, channel, team or agent); null without a breakdown.",
        examples=["team-logistics-uk-south"],
    )
    figures: Figures


def period_of(moment: str, period: Period) -> str:
    """``window``: every case in one period (the dashboard's bars and headline figures)."""
    if period == "window":
        return "window"
    day = _at(moment).astimezone(UTC).date()
    if period == "day":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def spread(durations: Iterable[float]) -> Spread:
    """Nearest-rank percentiles: the smallest measured value with at least q of them at or below it."""
    values = sorted(round(d, 3) for d in durations)  # milliseconds are the log's precision that matters

    def rank(q: float) -> float | None:
        return values[max(0, math.ceil(q * len(values)) - 1)] if values else None

    return Spread(count=len(values), p50=rank(0.5), p90=rank(0.9), p99=rank(0.99))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(start: str, end: str) -> float:
    return (_at(end) - _at(start)).total_seconds()


def _late(done_at: str | None, due: str, now: datetime) -> bool | None:
    """True: late (done after due, or not done and past due); False: on time; None: not due yet."""
    if done_at is not None:
        return done_at > due
    return True if _t(now) > due else None


def call_me_to_connected(cases: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds from each connected callback's "call me" to its connection."""
    return [
        _seconds(cb["requested_at"], cb["connected_at"])
        for c in cases
        if c["filed_at"]
        for cb in c["callbacks"].values()
        if cb.get("requested_at") and cb["connected_at"]
    ]


def to_first_human(cases: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds from each filing to its first human contact (cases nobody contacted yet left out)."""
    return [_seconds(c["filed_at"], c["first_human_at"]) for c in cases if c["filed_at"] and c["first_human_at"]]


def case_figures(
    cases: list[dict[str, Any]], transfers: list[dict[str, Any]], held_back: int, now: datetime
) -> Figures:
    """The figures of a group: its cases, the transfers counted in it, the messages held back in it."""
    filed = [c for c in cases if c["filed_at"]]
    resolved = [c for c in filed if c["resolved_at"]]
    first_contact = [c for c in resolved if not c["transfers"] and c["contacts"] <= 1]
    asks = [a for c in filed for a in c["asks"]]
    answers = defaultdict(int, {})
    for ask in asks:
        answers[ask["answer"]] += 1

    def reopened_within(days: int) -> int:
        return sum(
            1
            for c in resolved
            if any(timedelta(0) <= _at(r) - _at(c["resolved_at"]) <= timedelta(days=days) for r in c["reopened_at"])
        )

    acks = [_late(t["acknowledged_at"], t["due"], now) for t in transfers]
    outcomes = [_late(t["outcome_at"], t["outcome_due"], now) for t in transfers]
    escalations = defaultdict(int, {})
    for c in cases:
        for e in c["escalations"]:
            escalations[e["reason"]] += 1
    r7, r30 = reopened_within(7), reopened_within(30)
    return Figures(
        cases=len(filed),
        proactive=sum(c["channel"] == Channel.PROACTIVE for c in filed),
        call_me_to_connected_s=spread(call_me_to_connected(filed)),
        to_first_human_s=spread(to_first_human(filed)),
        resolved=len(resolved),
        first_contact_resolved=len(first_contact),
        first_contact_resolution_rate=_rate(len(first_contact), len(resolved)),
        contacts_per_resolution=(round(sum(c["contacts"] for c in resolved) / len(resolved), 4) if resolved else None),
        closure_asked=len(asks),
        confirmed=answers["confirmed"],
        disputed=answers["disputed"],
        unanswered=answers["unanswered"],
        confirmed_rate=_rate(answers["confirmed"], len(asks)),
        disputed_rate=_rate(answers["disputed"], len(asks)),
        unanswered_rate=_rate(answers["unanswered"], len(asks)),
        reopened_7d=r7,
        reopened_30d=r30,
        reopen_rate_7d=_rate(r7, len(resolved)),
        reopen_rate_30d=_rate(r30, len(resolved)),
        partner_acknowledged_on_time=acks.count(False),
        partner_acknowledged_late=acks.count(True),
        partner_outcome_on_time=outcomes.count(False),
        partner_outcome_late=outcomes.count(True),
        held_back=held_back,
        escalated_repeated_contacts=escalations[EscalationReason.REPEATED_CONTACTS.value],
        escalated_notification_blocked=escalations[EscalationReason.NOTIFICATION_BLOCKED.value],
        escalated_sla_breach=escalations[EscalationReason.SLA_BREACH.value],
    )


def _groups(facts: dict[str, Any], by: Dimension | None) -> list[str | None]:
    """The breakdown values a case counts under: a case transferred to two teams counts for each."""
    if by is None:
        return [None]
    if by == "team":
        return sorted({t["team"] for t in facts["transfers"]}) or [NONE]
    return [facts[by] or NONE]


def figures(
    all_facts: Iterable[dict[str, Any]], now: datetime, period: Period = "day", by: Dimension | None = None
) -> list[Row]:
    """The figures per period (and per value of ``by``), oldest period first."""
    cases: dict[tuple[str, str | None], list[dict]] = defaultdict(list)
    transfers: dict[tuple[str, str | None], list[dict]] = defaultdict(list)
    held: dict[tuple[str, str | None], int] = defaultdict(int)
    for facts in all_facts:
        if facts["filed_at"] is None:  # a person no case is about: only their held-back messages
            for moment in facts["held_back"]:
                held[(period_of(moment, period), None if by is None else NONE)] += 1
            continue
        when = period_of(facts["filed_at"], period)
        for group in _groups(facts, by):
            cases[(when, group)].append(facts)
            held[(when, group)] += len(facts["held_back"])
            transfers[(when, group)] += [t for t in facts["transfers"] if by != "team" or t["team"] == group]
    keys = sorted(set(cases) | set(held), key=lambda k: (k[0], k[1] or ""))
    return [
        Row(
            period=when,
            group=group,
            figures=case_figures(cases[(when, group)], transfers[(when, group)], held[(when, group)], now),
        )
        for when, group in keys
    ]


# --- breaches: the cases someone should look at now -----------------------------------------------


class Breach(Value):
    """A case a supervisor should look at: why, and for how long."""

    complaint_id: str = Field(description="The case.", examples=["c-2026-000042"])
    kind: Literal["waiting_for_a_human", "partner_sla_overdue", "disputed_closure"] = Field(
        description="waiting_for_a_human: open, no person has contacted the complainant yet; "
        "partner_sla_overdue: a partner team has not acknowledged or answered by its due time; "
        'disputed_closure: the complainant said no to "is this closed?" and it is not resolved again.',
        examples=["partner_sla_overdue"],
    )
    since: str = Field(
        description="Since when (filing, SLA due time or the answer's question).",
        examples=["2026-03-14T08:50:00+00:00"],
    )
    overdue_s: float = Field(description="How long, in seconds, until now.", examples=[5400.0])
    category: str | None = Field(description="What the case is about.", examples=["late_delivery"])
    team: str | None = Field(description="The partner team concerned, if any.", examples=["team-logistics-uk-south"])
    agent: str | None = Field(description="The agent on the case, if any.", examples=["agt-0042"])


def breaches(all_facts: Iterable[dict[str, Any]], now: datetime, limit: int = 50) -> list[Breach]:
    """The open cases that breach, longest first."""
    found: list[Breach] = []
    for f in all_facts:
        if f["filed_at"] is None or f["status"] == "closed":
            continue

        def add(kind: str, since: str, team: str | None = None, f: dict[str, Any] = f) -> None:
            found.append(
                Breach(
                    complaint_id=f["_id"],
                    kind=kind,
                    since=since,
                    overdue_s=_seconds(since, _t(now)),
                    category=f["category"],
                    team=team,
                    agent=f["agent"],
                )
            )

        if f["first_human_at"] is None and f["status"] == "open":
            add("waiting_for_a_human", f["filed_at"])
        for t in f["transfers"]:
            if t["acknowledged_at"] is None and _t(now) > t["due"]:
                add("partner_sla_overdue", t["due"], t["team"])
            elif t["outcome_at"] is None and _t(now) > t["outcome_due"]:
                add("partner_sla_overdue", t["outcome_due"], t["team"])
        if f["status"] == "reopened" and f["asks"] and f["asks"][-1]["answer"] == "disputed":
            add("disputed_closure", f["asks"][-1]["asked_at"])
    return sorted(found, key=lambda b: -b.overdue_s)[:limit]
