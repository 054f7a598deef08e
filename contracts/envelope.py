"""The envelope every event travels in: CloudEvents 1.0, and its Kafka binary-mode mapping.

A subscriber needs only this module and the module of the topic it reads. The payload of a
message is the event's JSON; everything about the event (id, type, subject, time, trace and
correlation) travels in headers, as CloudEvents' Kafka protocol binding ("binary mode") says.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"

# Header names of the binary mode (CloudEvents Kafka protocol binding 1.0, section 3.2.3).
# The two extension attributes are ours; CloudEvents names must be lower-case alphanumerics.
H_ID, H_TYPE, H_SOURCE, H_SUBJECT, H_TIME, H_SPECVERSION = (
    "ce_id",
    "ce_type",
    "ce_source",
    "ce_subject",
    "ce_time",
    "ce_specversion",
)
H_CORRELATION, H_CAUSATION = "ce_correlationid", "ce_causationid"
H_CONTENT_TYPE, H_TRACEPARENT, H_TRACESTATE = "content-type", "traceparent", "tracestate"


class Event(BaseModel):
    """Base of every event payload: frozen, strict about unknown fields, named by a stable type.

    Subclasses set ``type_name`` (a stable string, never a Python path) and ``version`` (an
    integer bumped only by a breaking change, with an upcaster for the old one). The CloudEvents
    ``type`` of an event is ``f"{type_name}.v{version}"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]
    version: ClassVar[int] = 1
    #: Public events are published on the owning service's topic; private ones stay in its log.
    public: ClassVar[bool] = True

    @classmethod
    def ce_type(cls) -> str:
        return f"{cls.type_name}.v{cls.version}"

    def subject(self) -> str:
        """The id that keys this event on Kafka (the complaint id for complaint events)."""
        return str(self.complaint_id)


class Envelope(BaseModel):
    """One CloudEvent: the context attributes, our two extensions, and the JSON data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        description="Unique id of this event; consumers deduplicate on it.",
        examples=["0b6f1c2e-8a4e-5d7c-9a57-3f1d1b2e4c6a"],
    )
    type: str = Field(
        description="Stable event type with its schema version.", examples=["complaints.intake.ComplaintFiled.v1"]
    )
    source: str = Field(description="The service that emitted the event.", examples=["/services/intake"])
    subject: str = Field(
        description="The complaint (or other aggregate) the event is about; the Kafka message key.",
        examples=["c-2026-000042"],
    )
    time: AwareDatetime = Field(
        description="When the event happened (RFC 3339, with offset).", examples=["2026-11-29T14:03:07.120Z"]
    )
    specversion: str = Field(default=SPECVERSION, description="CloudEvents version.", examples=["1.0"])
    datacontenttype: str = Field(default=CONTENT_TYPE, description="Media type of data.", examples=["application/json"])
    correlationid: str = Field(
        description="Id shared by every event of one conversation, from the first request on.",
        examples=["req-5f2c9a61"],
    )
    causationid: str | None = Field(
        default=None, description="Id of the event or request that caused this one.", examples=["req-5f2c9a61"]
    )
    traceparent: str | None = Field(
        default=None,
        description="W3C trace context of the producer.",
        examples=["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    )
    tracestate: str | None = Field(default=None, description="W3C trace state, if any.", examples=["vendor=opaque"])
    data: dict[str, Any] = Field(
        description="The event payload as JSON (already JSON-ready: build it with model_dump(mode='json')).",
        examples=[{"complaint_id": "c-2026-000042"}],
    )


class MalformedMessage(ValueError):
    """A Kafka message that is not a valid CloudEvent of ours (goes to the DLQ, never retried)."""


class UnknownEventType(LookupError):
    """A well-formed CloudEvent whose type no registered contract describes."""


def to_kafka(envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the binary-mode Kafka message for ``envelope``."""
    headers = [
        (H_ID, envelope.id),
        (H_TYPE, envelope.type),
        (H_SOURCE, envelope.source),
        (H_SUBJECT, envelope.subject),
        (H_TIME, envelope.time.isoformat()),
        (H_SPECVERSION, envelope.specversion),
        (H_CONTENT_TYPE, envelope.datacontenttype),
        (H_CORRELATION, envelope.correlationid),
    ]
    optional = (
        (H_CAUSATION, envelope.causationid),
        (H_TRACEPARENT, envelope.traceparent),
        (H_TRACESTATE, envelope.tracestate),
    )
    headers += [(k, v) for k, v in optional if v]
    value = json.dumps(envelope.data, separators=(",", ":"), ensure_ascii=False).encode()
    return envelope.subject.encode(), value, [(k, v.encode()) for k, v in headers]


def from_kafka(value: bytes | None, headers: list[tuple[str, bytes | None]] | None) -> Envelope:
    """The envelope of a binary-mode Kafka message; ``MalformedMessage`` says what is wrong."""
    h = {k: (v.decode(errors="replace") if v is not None else None) for k, v in headers or []}
    missing = [n for n in (H_ID, H_TYPE, H_SOURCE, H_SUBJECT, H_TIME, H_CORRELATION) if not h.get(n)]
    if missing:
        raise MalformedMessage(f"missing CloudEvents header(s): {', '.join(missing)}")
    if h.get(H_SPECVERSION, SPECVERSION) != SPECVERSION:
        raise MalformedMessage(f"{H_SPECVERSION} must be {SPECVERSION}, got {h[H_SPECVERSION]!r}")
    try:
        data = json.loads(value or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"payload is not JSON: {exc}") from None
    except RecursionError:  # "[" * 100000: the decoder's stack, not ours, is the limit
        raise MalformedMessage("payload is not JSON we can read: nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedMessage("payload must be a JSON object")
    try:
        return Envelope(
            id=h[H_ID],
            type=h[H_TYPE],
            source=h[H_SOURCE],
            subject=h[H_SUBJECT],
            time=h[H_TIME],
            specversion=h.get(H_SPECVERSION) or SPECVERSION,
            datacontenttype=h.get(H_CONTENT_TYPE) or CONTENT_TYPE,
            correlationid=h[H_CORRELATION],
            causationid=h.get(H_CAUSATION),
            traceparent=h.get(H_TRACEPARENT),
            tracestate=h.get(H_TRACESTATE),
            data=data,
        )
    except ValidationError as exc:
        raise MalformedMessage(f"invalid CloudEvents attributes: {exc}") from None


class Registry:
    """Maps CloudEvents types to event classes, and old versions to upcasters.

    ``decode`` is the one way an envelope becomes a typed event: an old version is upcast step
    by step to the current one, an unknown type raises ``UnknownEventType``, an invalid payload
    raises ``MalformedMessage``.
    """

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}
        self._upcasters: dict[str, tuple[str, Any]] = {}

    def register(self, cls: type[Event]) -> type[Event]:
        existing = self._types.get(cls.ce_type())
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {cls.ce_type()} registered twice")
        self._types[cls.ce_type()] = cls
        return cls

    def upcaster(self, old_type: str, new_type: str):
        """Decorator: ``fn(data: dict) -> dict`` turning ``old_type`` data into ``new_type`` data."""

        def wrap(fn):
            if old_type in self._upcasters:
                raise ValueError(f"upcaster for {old_type} registered twice")
            self._upcasters[old_type] = (new_type, fn)
            return fn

        return wrap

    def types(self) -> dict[str, type[Event]]:
        return dict(self._types)

    def upcast_types(self) -> frozenset[str]:
        """The old types an upcaster reads (the compatibility check accepts them gone from the code)."""
        return frozenset(self._upcasters)

    def knows(self, ce_type: str) -> bool:
        return ce_type in self._types or ce_type in self._upcasters

    def event_class(self, ce_type: str) -> type[Event]:
        """The class ``decode`` makes of events of ``ce_type``; ``UnknownEventType`` if none."""
        return self._upcasting(ce_type)[0]

    def _upcasting(self, ce_type: str) -> tuple[type[Event], list[Any]]:
        """The class events of ``ce_type`` become, and the upcasters on the way, in order."""
        seen, steps = set(), []
        while ce_type in self._upcasters and ce_type not in seen:
            seen.add(ce_type)
            ce_type, fn = self._upcasters[ce_type]
            steps.append(fn)
        cls = self._types.get(ce_type)
        if cls is None:
            raise UnknownEventType(f"unknown event type {ce_type!r}")
        return cls, steps

    def decode(self, ce_type: str, data: dict[str, Any]) -> Event:
        cls, steps = self._upcasting(ce_type)
        for fn in steps:
            data = fn(data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise MalformedMessage(f"payload does not match {ce_type}: {exc}") from None


#: The registry of every public contract; each topic module registers its events on import.
registry = Registry()


def event(cls: type[Event]) -> type[Event]:
    """Class decorator: register a public event in the shared registry."""
    return registry.register(cls)
