"""The customer-experience figures, from public events to numbers, with no I/O (services/intake/experience.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce

from contracts.intake import CallbackRequested, ComplaintFiled, CustomerMessageReceived
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
    HandoffBrief,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    TransferredToPartner,
)
from services.intake.experience import breaches, figures, new_facts, record, spread

MONDAY = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # ISO week 2026-W11


def at(minutes: float, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, minutes=minutes)


def filed(cid: str, when: datetime, channel: str = "web", category: str = "late_delivery") -> ComplaintFiled:
    return ComplaintFiled(
        complaint_id=cid,
        category=category,
        description="It is late.",
        channel=channel,
        complainant={"email": "sam@example.com"},
        filed_at=when,
    )


def asked(cid: str, when: datetime) -> ClosureConfirmationRequested:
    return ClosureConfirmationRequested(
        complaint_id=cid,
        message_id=f"<{cid}@x>",
        to="sam@example.com",
        recap="Refunded.",
        yes_url_expires_at=when + timedelta(days=7),
        requested_at=when,
    )


def resolved(cid: str, when: datetime, agent: str = "agt-ana") -> ComplaintResolved:
    return ComplaintResolved(complaint_id=cid, agent_id=agent, recap="Refunded.", resolved_at=when)


def transferred(cid: str, when: datetime, team: str, sla_minutes: int = 60) -> TransferredToPartner:
    brief = HandoffBrief(customer_asks="Look into it.", tried="Checked the route.", promised="An answer.")
    return TransferredToPartner(
        complaint_id=cid,
        team_id=team,
        by_agent_id="agt-ana",
        brief=brief,
        transferred_at=when,
        sla_due_at=when + timedelta(minutes=sla_minutes),
    )


def facts_of(cid: str, *events) -> dict:
    return reduce(record, events, new_facts(cid))


def a_mixed_week() -> list[dict]:
    """Five cases of one Monday, and one held-back reminder about no case."""
    return [
        # a call: connected 30 s after "call me", resolved on the call, confirmed
        facts_of(
            "c1",
            filed("c1", at(0), "web"),
            CallbackRequested(complaint_id="c1", callback_id="cb1", phone="+447700900123", requested_at=at(0)),
            AgentAssigned(complaint_id="c1", agent_id="agt-ana", callback_id="cb1", assigned_at=at(0.2), reason="idle"),
            CallConnected(complaint_id="c1", callback_id="cb1", agent_id="agt-ana", connected_at=at(0.5)),
            resolved("c1", at(10)),
            asked("c1", at(10.5)),
            CustomerConfirmedClosed(complaint_id="c1", via="link", confirmed_at=at(20)),
        ),
        # an email: taken after 60 min, written to again, resolved, disputed then reopened
        facts_of(
            "c2",
            filed("c2", at(0), "email"),
            AgentAssigned(complaint_id="c2", agent_id="agt-bo", assigned_at=at(60), reason="skill"),
            CustomerMessageReceived(
                complaint_id="c2",
                message_id="m2",
                channel="email",
                text="Any news?",
                sender="sam@example.com",
                received_at=at(90),
            ),
            resolved("c2", at(120), "agt-bo"),
            asked("c2", at(121)),
            ComplaintReopened(complaint_id="c2", via="link", reopened_at=at(0, day=2)),
        ),
        # a transfer: acknowledged late, outcome on time, resolved; the question ran out
        facts_of(
            "c3",
            filed("c3", at(0), "web"),
            AgentAssigned(complaint_id="c3", agent_id="agt-ana", assigned_at=at(5), reason="skill"),
            transferred("c3", at(10), "team-south"),
            PartnerAcknowledged(complaint_id="c3", team_id="team-south", by="p1", acknowledged_at=at(100)),
            PartnerOutcomeRecorded(
                complaint_id="c3", team_id="team-south", outcome_for_customer="Spoken to.", recorded_at=at(65)
            ),
            Escalated(complaint_id="c3", reason="sla_breach", detail="Silent.", escalated_at=at(70)),
            resolved("c3", at(130)),
            asked("c3", at(131)),
            ComplaintClosedUnconfirmed(complaint_id="c3", closed_at=at(0, day=8)),
        ),
        # proactive, nobody has taken it yet
        facts_of("c4", filed("c4", at(30), "proactive")),
        # a transfer nobody acknowledged, a repeat contact escalated, a held-back email
        facts_of(
            "c5",
            filed("c5", at(0), "social", "account_locked"),
            AgentAssigned(complaint_id="c5", agent_id="agt-cy", assigned_at=at(2), reason="skill"),
            transferred("c5", at(3), "team-security", 30),
            Escalated(complaint_id="c5", reason="repeated_contacts", detail="Four emails.", escalated_at=at(9)),
            NotificationSuppressed(
                complaint_id="c5",
                template="closure",
                channel="email",
                reason="cap_reached",
                alternative="none",
                suppressed_at=at(8),
            ),
        ),
        facts_of(
            "sell-1",
            NotificationSuppressed(
                recipient="sell-1",
                template="seller_login_reminder",
                channel="email",
                reason="cannot_act",
                alternative="human",
                suppressed_at=at(0, day=1),
            ),
        ),
    ]


def test_percentiles_are_nearest_rank_and_empty_is_none():
    assert spread([]).p50 is None
    assert spread([3, 1, 2]).model_dump() == {"count": 3, "p50": 2, "p90": 3, "p99": 3}
    assert spread(range(1, 101)).p90 == 90


def test_a_week_of_mixed_cases_gives_every_figure():
    week = figures(a_mixed_week(), now=at(0, day=10), period="week")
    assert [r.period for r in week] == ["2026-W11"]
    f = week[0].figures
    assert (f.cases, f.proactive) == (5, 1)
    assert f.call_me_to_connected_s.model_dump() == {"count": 1, "p50": 30.0, "p90": 30.0, "p99": 30.0}
    # c1 30 s (the call), c5 120 s, c3 300 s, c2 3600 s; c4 nobody yet
    assert f.to_first_human_s.model_dump() == {"count": 4, "p50": 120.0, "p90": 3600.0, "p99": 3600.0}
    assert (f.resolved, f.first_contact_resolved, f.first_contact_resolution_rate) == (3, 1, 0.3333)
    assert f.contacts_per_resolution == round((1 + 3 + 1) / 3, 4)  # c2: filed, wrote, said no
    assert (f.closure_asked, f.confirmed, f.disputed, f.unanswered) == (3, 1, 1, 1)
    assert f.confirmed_rate == f.disputed_rate == f.unanswered_rate == 0.3333
    assert (f.reopened_7d, f.reopened_30d, f.reopen_rate_7d) == (1, 1, 0.3333)
    # c3: acknowledged late, outcome on time; c5: neither, both past due
    assert (f.partner_acknowledged_on_time, f.partner_acknowledged_late) == (0, 2)
    assert (f.partner_outcome_on_time, f.partner_outcome_late) == (1, 1)
    assert f.held_back == 2
    assert (f.escalated_repeated_contacts, f.escalated_sla_breach, f.escalated_notification_blocked) == (1, 1, 0)


def test_per_day_a_held_back_message_about_no_case_counts_the_day_it_was_held():
    days = figures(a_mixed_week(), now=at(0, day=10), period="day")
    assert [(r.period, r.figures.cases, r.figures.held_back) for r in days] == [
        ("2026-03-09", 5, 1),
        ("2026-03-10", 0, 1),
    ]


def test_by_team_each_transfer_counts_for_its_team_and_untransferred_cases_for_none():
    rows = {r.group: r.figures for r in figures(a_mixed_week(), now=at(0, day=10), period="week", by="team")}
    assert set(rows) == {"(none)", "team-security", "team-south"}
    assert (rows["team-south"].partner_acknowledged_late, rows["team-south"].partner_outcome_on_time) == (1, 1)
    assert rows["team-security"].partner_outcome_late == 1 and rows["(none)"].cases == 3


def test_by_agent_a_case_counts_for_the_agent_who_resolved_it():
    rows = {r.group: r.figures for r in figures(a_mixed_week(), now=at(0, day=10), period="week", by="agent")}
    assert rows["agt-bo"].resolved == 1 and rows["agt-ana"].resolved == 2 and rows["(none)"].cases == 1


def test_a_transfer_not_yet_due_is_neither_on_time_nor_late():
    case = facts_of("c6", filed("c6", at(0)), transferred("c6", at(1), "team-south", 60))
    f = figures([case], now=at(30))[0].figures
    assert (f.partner_acknowledged_on_time, f.partner_acknowledged_late) == (0, 0)


def test_breaches_list_the_waiting_the_overdue_and_the_disputed_longest_first():
    found = breaches(a_mixed_week(), now=at(0, day=3))
    assert [(b.complaint_id, b.kind) for b in found] == [
        ("c4", "waiting_for_a_human"),
        ("c5", "partner_sla_overdue"),
        ("c2", "disputed_closure"),
    ]
    assert found[1].team == "team-security"


def test_recording_an_event_leaves_the_facts_it_was_given_unchanged():
    before = facts_of("c7", filed("c7", at(0)))
    after = record(before, transferred("c7", at(1), "team-south"))
    assert before["transfers"] == [] and len(after["transfers"]) == 1


def test_the_window_period_puts_every_case_in_one_row():
    rows = figures(a_mixed_week(), now=at(0, day=10), period="window")
    assert [(r.period, r.figures.cases, r.figures.held_back) for r in rows] == [("window", 5, 2)]


def test_a_call_connected_before_its_request_was_read_still_counts():
    case = facts_of(
        "c8",
        filed("c8", at(0)),
        CallConnected(complaint_id="c8", callback_id="cb8", agent_id="agt-ana", connected_at=at(1)),
        CallbackRequested(complaint_id="c8", callback_id="cb8", phone="+447700900123", requested_at=at(0)),
    )
    assert figures([case], now=at(5))[0].figures.call_me_to_connected_s.p50 == 60.0


def test_a_no_read_before_the_resolution_it_answers_still_leaves_the_case_reopened():
    """Routing's resolution and notify's answers come on different topics, in no order across
    them: the status follows the events' own times, not the order they were read in."""
    in_time = facts_of(
        "c9",
        filed("c9", at(0)),
        resolved("c9", at(30)),
        asked("c9", at(31)),
        ComplaintReopened(complaint_id="c9", via="link", reopened_at=at(0, day=2)),
    )
    notify_first = facts_of(
        "c9",
        filed("c9", at(0)),
        asked("c9", at(31)),
        ComplaintReopened(complaint_id="c9", via="link", reopened_at=at(0, day=2)),
        resolved("c9", at(30)),
    )

    assert in_time["status"] == notify_first["status"] == "reopened"
    assert [b.kind for b in breaches([notify_first], at(0, day=3))] == ["disputed_closure"]
