"""Small events for kernel tests: a complaint that receives numbered notes.

They live in their own registry, apart from the public contracts, so kernel tests do not depend
on any service's schema.
"""

from __future__ import annotations

from pydantic import Field

from contracts.envelope import Event, Registry

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
