"""A person with no case (stream ``person-<recipient>``): escalations of repeated contacts that
belong to no case yet."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from contracts.envelope import Event
from contracts.routing import EscalationReason, PersonEscalated
from services.kernel.domain import Aggregate, Value


class Person(Value):
    """Someone a supervisor was asked to help though no case of theirs is open."""

    escalations: int = 0


class EscalatePerson(Value):
    recipient: str = Field(min_length=1)
    address: str = Field(min_length=1)
    detail: str = Field(min_length=1)


def decide_person(state: Person, command: EscalatePerson, now: datetime) -> list[Event]:
    return [PersonEscalated(**command.model_dump(), reason=EscalationReason.NOTIFICATION_BLOCKED, escalated_at=now)]


PERSON: Aggregate[Person] = Aggregate(
    Person(), lambda state, event: state.model_copy(update={"escalations": state.escalations + 1}), decide_person
)
