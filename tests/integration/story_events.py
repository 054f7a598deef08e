"""Small events for kernel tests: a complaint that receives numbered notes.

They live in their own registry, apart from the public contracts, so kernel tests do not depend
on any service's schema.
"""

from __future__ import annotations

from pydantic import Field

from contracts.envelope import Event, Registry
from services.kernel.domain import Aggregate, Value

registry = Registry()


@registry.register
class NoteAdded(Event):
    """A note numbered ``n`` was added to a complaint."""

    type_name = "complaints.test.NoteAdded"
    complaint_id: str = Field(description="Complaint.", examples=["c-1"])
    n: int = Field(description="Sequence number of the note within its complaint.", examples=[1])
    text: str = Field("", description="Note text.", examples=["called the depot"])


@registry.register
class NoteCounted(Event):
    """A consumer counted a note (the event a handler appends when it consumes NoteAdded)."""

    type_name = "complaints.test.NoteCounted"
    public = False
    complaint_id: str = Field(description="Complaint.", examples=["c-1"])
    n: int = Field(description="Number of the note that was counted.", examples=[1])


class Notes(Value):
    """The state of a stream of notes: their numbers, in the order they were added."""

    numbers: tuple[int, ...] = ()


class AddNote(Value):
    n: int


def _decide(state: Notes, command: AddNote, now) -> list[Event]:
    return [NoteAdded(complaint_id="c-1", n=command.n)]


def _evolve(state: Notes, event: NoteAdded) -> Notes:
    return Notes(numbers=(*state.numbers, event.n))


#: A stream that collects notes, for tests of running commands (kernel/commands.py).
NOTES = Aggregate(Notes(), _evolve, _decide)
