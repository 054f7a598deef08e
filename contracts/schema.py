"""Generates the JSON Schemas and the AsyncAPI 3 document of every public event from the code.

Run ``python -m contracts.schema`` to rewrite ``docs/asyncapi.json`` and ``docs/schemas/``.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from contracts import TOPICS
from contracts.envelope import (
    CONTENT_TYPE,
    H_CAUSATION,
    H_CONTENT_TYPE,
    H_CORRELATION,
    H_ID,
    H_SOURCE,
    H_SPECVERSION,
    H_SUBJECT,
    H_TIME,
    H_TRACEPARENT,
    H_TRACESTATE,
    H_TYPE,
    SPECVERSION,
    Event,
    registry,
)

#: Version of the document; bump it with the project version when a contract changes.
DOCUMENT_VERSION = "0.1.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
DLQ_HEADERS = {
    "dlq_reason": "Why the message could not be handled, in words a person can act on.",
    "dlq_error_class": "Class of the error, e.g. MalformedMessage or UnknownEventType.",
    "dlq_original_topic": "Topic the message was first read from.",
    "dlq_original_partition": "Partition it was read from (decimal).",
    "dlq_original_offset": "Offset it had there (decimal).",
    "dlq_failed_at": "When the consumer gave up on it (UTC, RFC 3339).",
}

DESCRIPTION = f"""\
Every public event of the complaint platform. Each service owns one topic and is its only writer.

**CloudEvents 1.0 in Kafka binary mode.** The message value is the event's JSON payload (the
schemas below); the CloudEvents attributes travel as headers: `ce_id`, `ce_type` (the type name
plus `.v<version>`), `ce_source`, `ce_subject`, `ce_time`, `ce_specversion`, `content-type`, and
our extensions `ce_correlationid` and `ce_causationid`, with W3C `traceparent`/`tracestate`.

**Keyed by subject.** The message key equals `ce_subject`: the complaint id for every event about
a complaint, so all events of one complaint land on one partition and keep their order; roster
events are keyed by agent or team id, verification events by verification id.

**Evolution.** An additive change keeps the version; a breaking change adds a new `ce_type`
version, and consumers upcast the old one on read. Ignore types you do not know.

**Dead letters.** A message that cannot be handled is copied, unchanged, to `<topic>.dlq` with
its original headers plus {", ".join(f"`{h}`" for h in DLQ_HEADERS)}.
"""


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema (draft 2020-12) of each registered event, by CloudEvents type (private
    ones too: they are the stored form of a service's own log, kept readable for ever)."""
    return {
        ce_type: {"$schema": JSON_SCHEMA_DIALECT, "$id": f"urn:complaints:{ce_type}", **reader_schema(cls)}
        for ce_type, cls in sorted(registry.types().items())
    }


def reader_schema(cls: type[Event]) -> dict[str, Any]:
    """The event's JSON Schema as subscribers read it: tolerant of fields added later.

    Our models forbid unknown fields when we build an event (a typo is a bug); a subscriber must
    ignore them instead, or every new optional field would break it (contracts.compatibility).
    """
    return _tolerant(cls.model_json_schema())


def _tolerant(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _tolerant(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [_tolerant(v) for v in node]
    return node


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every topic in ``contracts.TOPICS`` and its DLQ."""
    shared: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for service, topic in TOPICS.items():
        # Private events stay in the owning service's log and never travel on the topic.
        events = {
            ce_type: cls
            for ce_type, cls in sorted(registry.types().items())
            if cls.type_name.split(".")[1] == service and cls.public
        }
        messages = {_message_id(cls): _message(cls, service, shared) for cls in events.values()}
        channels[service] = {
            "address": topic,
            "title": f"{service} events",
            "description": f"Public events of the {service} service, keyed by subject (usually the complaint id).",
            "messages": messages,
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        channels[f"{service}Dlq"] = {
            "address": f"{topic}.dlq",
            "title": f"{service} dead letters",
            "description": f"Messages of `{topic}` that a consumer could not handle.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            "bindings": {"kafka": {"topic": f"{topic}.dlq", "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        operations[f"publish{service.title()}Events"] = {
            "action": "send",
            "title": f"The {service} service publishes its events",
            "channel": {"$ref": f"#/channels/{service}"},
            "messages": [{"$ref": f"#/channels/{service}/messages/{mid}"} for mid in messages],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Complaint platform events", "version": DOCUMENT_VERSION, "description": DESCRIPTION},
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "The local stack's broker."}
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(shared.items())), "messages": {"DeadLetter": _dead_letter()}},
    }


def _message_id(cls: type[Event]) -> str:
    return f"{cls.__name__}V{cls.version}"


def _summary(cls: type) -> str:
    return inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].replace("\n", " ")


def _message(cls: type[Event], service: str, shared: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    message: dict[str, Any] = {
        "name": name,
        "title": re.sub(r"(?<!^)(?=[A-Z])", " ", name).capitalize(),
        "summary": _summary(cls),
        "contentType": CONTENT_TYPE,
        "headers": _headers(cls.ce_type()),
        "payload": _hoist_defs(reader_schema(cls), shared),
        "correlationId": {
            "location": f"$message.header#/{H_CORRELATION}",
            "description": "Shared by every event of one conversation.",
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": "Same as ce_subject (the "
                    "complaint id for complaint events); orders one subject's events.",
                    "examples": ["c-2026-000042"],
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if (details := inspect.cleandoc(cls.__doc__ or "")) != message["summary"]:
        message["description"] = details
    if (sample := _sample(cls, service)) is not None:
        message["examples"] = [
            {
                "name": "storedSample",
                "summary": "The stored contract sample.",
                "headers": _example_headers(cls, service, sample),
                "payload": sample,
            }
        ]
    return message


def _headers(ce_type: str) -> dict[str, Any]:
    def header(description: str, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **extra}

    return {
        "type": "object",
        "required": [H_ID, H_TYPE, H_SOURCE, H_SUBJECT, H_TIME, H_SPECVERSION, H_CONTENT_TYPE, H_CORRELATION],
        "properties": {
            H_ID: header("Unique event id; consumers deduplicate on it."),
            H_TYPE: header("The event type and schema version.", const=ce_type),
            H_SOURCE: header("The emitting service.", examples=["/services/intake"]),
            H_SUBJECT: header("What the event is about, usually the complaint id (also the message key)."),
            H_TIME: header("When the event happened (RFC 3339).", format="date-time"),
            H_SPECVERSION: header("CloudEvents version.", const=SPECVERSION),
            H_CONTENT_TYPE: header("Media type of the value.", const=CONTENT_TYPE),
            H_CORRELATION: header("Id shared by every event of one conversation."),
            H_CAUSATION: header("Id of the event or request that caused this one."),
            H_TRACEPARENT: header("W3C trace context of the producer."),
            H_TRACESTATE: header("W3C trace state, if any."),
        },
    }


def _example_headers(cls: type[Event], service: str, sample: dict[str, Any]) -> dict[str, str]:
    subject = str(sample.get("complaint_id", "c-2026-000042"))
    return {
        H_ID: "0b6f1c2e-8a4e-5d7c-9a57-3f1d1b2e4c6a",
        H_TYPE: cls.ce_type(),
        H_SOURCE: f"/services/{service}",
        H_SUBJECT: subject,
        H_TIME: "2026-03-14T09:12:03Z",
        H_SPECVERSION: SPECVERSION,
        H_CONTENT_TYPE: CONTENT_TYPE,
        H_CORRELATION: "7d3e9a40-1c55-4b8e-9f0a-2b6c8d1e5f37",
    }


def _dead_letter() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A message a consumer could not handle, with the reason in headers.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": list(DLQ_HEADERS),
            "properties": {h: {"type": "string", "description": d} for h, d in DLQ_HEADERS.items()},
        },
        "payload": {
            "description": "The original message value, byte for byte (it may not be JSON: that can be why it is here)."
        },
    }


def _hoist_defs(schema: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Move ``$defs`` to ``components/schemas`` and point every ``$ref`` there."""
    schema = copy.deepcopy(schema)
    for name, definition in schema.pop("$defs", {}).items():
        definition = _rewrite_refs(definition)  # a nested model may refer to another (an enum)
        if shared.setdefault(name, definition) != definition:
            # Two events sharing a name for different shapes would silently share one schema.
            raise ValueError(f"two different schemas are both named {name!r}")
    return _rewrite_refs(schema)


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _sample(cls: type[Event], service: str) -> dict[str, Any] | None:
    path = resources.files("contracts") / "samples" / service / f"{cls.ce_type()}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main(out: Path = Path("docs")) -> None:
    """Write ``docs/asyncapi.json`` and ``docs/schemas/<ce_type>.json``."""
    (out / "schemas").mkdir(parents=True, exist_ok=True)
    _write(out / "asyncapi.json", asyncapi_document())
    for ce_type, schema in json_schemas().items():
        _write(out / "schemas" / f"{ce_type}.json", schema)


def _write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
