"""Routing's use cases: each loads a stream, decides with the pure domain, and appends."""

from __future__ import annotations

from contracts.intake import CallbackCancelled, CallbackRequested, Channel, ComplaintFiled
from services.kernel.commands import execute
from services.kernel.eventstore import Cause, EventStore
from services.routing.domain import (CASE, ROSTER, ROSTER_STREAM, Agent, AssignForCallback,
                                     CancelQueuedCallback, ChangeAvailability, Needs, NotFound,
                                     OpenCase, RegisterAgent, RegisterPartnerTeam, Team, case_stream)
from services.routing.rules import AgentsWithSkill, Rules, route


class Routing:
    """The routing use cases, on the service's event store and routing rules."""

    def __init__(self, store: EventStore, rules: Rules) -> None:
        self.store, self.rules = store, rules

    async def open_case(self, filed: ComplaintFiled, cause: Cause) -> None:
        """A filed complaint becomes a case, sent where the rules say (region: not known yet)."""
        target = route(self.rules, filed.category, None, filed.assurance)
        await execute(self.store, CASE, case_stream(filed.complaint_id), OpenCase(
            complaint_id=filed.complaint_id, category=filed.category, assurance=filed.assurance,
            target=target), cause)

    async def assign_callback(self, requested: CallbackRequested, cause: Cause) -> None:
        """"Call me": the longest-idle fitting agent at once, or the queue."""
        events, _ = await self.store.load(case_stream(requested.complaint_id))
        case = CASE.fold(events)
        if case.complaint_id is None:
            # Intake keys both events by complaint id, so its ComplaintFiled came first on the
            # same partition: a case missing here means that event was lost or dead-lettered.
            # Opening a case ourselves is impossible (no category); retrying would block the
            # partition for ever. Refuse: the callback goes to the DLQ, to be redriven.
            raise NotFound("case", requested.complaint_id)
        target = route(self.rules, case.category, case.region, case.assurance)
        # A case the rules send to a team or a supervisor is still called back by an agent
        # who knows its category.
        skill = target.skill if isinstance(target, AgentsWithSkill) else case.category
        needs = Needs(skill=skill, language=requested.preferred_language, region=case.region,
                      channel=Channel.PHONE)
        await execute(self.store, ROSTER, ROSTER_STREAM, AssignForCallback(
            complaint_id=requested.complaint_id, callback_id=requested.callback_id,
            phone=requested.phone, needs=needs), cause)

    async def cancel_callback(self, cancelled: CallbackCancelled, cause: Cause) -> None:
        await execute(self.store, ROSTER, ROSTER_STREAM, CancelQueuedCallback(
            complaint_id=cancelled.complaint_id, callback_id=cancelled.callback_id), cause)

    async def register_agent(self, command: RegisterAgent, cause: Cause) -> Agent:
        outcome = await execute(self.store, ROSTER, ROSTER_STREAM, command, cause)
        return outcome.state.agents[command.agent_id]

    async def change_availability(self, command: ChangeAvailability, cause: Cause) -> Agent:
        outcome = await execute(self.store, ROSTER, ROSTER_STREAM, command, cause)
        return outcome.state.agents[command.agent_id]

    async def register_partner_team(self, command: RegisterPartnerTeam, cause: Cause) -> Team:
        outcome = await execute(self.store, ROSTER, ROSTER_STREAM, command, cause)
        return outcome.state.teams[command.team_id]
