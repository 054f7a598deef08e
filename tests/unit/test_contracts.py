"""The public contracts: stored samples, documentation of every field, the Kafka binary mode."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import contracts
from contracts import TOPICS, schema
from contracts.envelope import (
    Envelope,
    Event,
    MalformedMessage,
    Registry,
    UnknownEventType,
    from_kafka,
    registry,
    to_kafka,
)
from contracts.intake import CATEGORY_LABELS, Category

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(contracts.__file__).parent / "samples"
FILED = "complaints.intake.ComplaintFiled.v1"
CALLBACK = "complaints.intake.CallbackRequested.v1"


def sample_path(cls: type[Event]) -> Path:
    service = cls.type_name.split(".")[1]
    return SAMPLES / service / f"{cls.ce_type()}.json"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def stored_sample(ce_type: str) -> dict[str, Any]:
    return load(sample_path(registry.types()[ce_type]))


def an_envelope(**overrides: Any) -> Envelope:
    attributes: dict[str, Any] = dict(
        id="0b6f1c2e-8a4e-5d7c-9a57-3f1d1b2e4c6a",
        type=FILED,
        source="/services/intake",
        subject="c-2026-000042",
        time=datetime(2026, 3, 14, 9, 12, 3, 250000, tzinfo=UTC),
        correlationid="7d3e9a40-1c55-4b8e-9f0a-2b6c8d1e5f37",
        causationid="req-5521",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        tracestate="vendor=opaque",
        data=stored_sample(FILED),
    )
    return Envelope(**(attributes | overrides))


def documented_properties(json_schema: dict[str, Any]):
    """Every (model, property, property schema) of a JSON Schema, nested models included."""
    for model in [json_schema, *json_schema.get("$defs", {}).values()]:
        for name, prop in model.get("properties", {}).items():
            yield model["title"], name, prop


ALL_TYPES = sorted(registry.types())


# --- stored samples: kept for ever, so old producers' messages stay readable ------------------


@pytest.mark.parametrize("ce_type", ALL_TYPES)
def test_every_registered_type_has_a_stored_sample(ce_type):
    assert sample_path(registry.types()[ce_type]).is_file(), f"store a sample for {ce_type}"


@pytest.mark.parametrize("ce_type", ALL_TYPES)
def test_a_stored_sample_decodes_and_reserialises_to_the_same_json(ce_type):
    data = stored_sample(ce_type)

    decoded = registry.decode(ce_type, data)

    if type(decoded) is registry.types()[ce_type]:  # an old version comes back upcast instead
        assert decoded.model_dump(mode="json", exclude_unset=True) == data


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*/*.json")), ids=lambda p: p.name)
def test_every_stored_sample_of_any_version_still_decodes(path):
    ce_type = path.stem
    assert registry.knows(ce_type), f"{path.name} has no contract or upcaster any more"
    assert path.parent.name == ce_type.split(".")[1], "a sample lives under its service"

    registry.decode(ce_type, load(path))


# --- documentation: every field a subscriber sees is explained ---------------------------------


@pytest.mark.parametrize("ce_type", ALL_TYPES)
def test_every_field_of_a_contract_has_a_description_and_an_example(ce_type):
    json_schema = registry.types()[ce_type].model_json_schema()
    undocumented = [
        f"{model}.{name}"
        for model, name, prop in documented_properties(json_schema)
        if not prop.get("description") or not prop.get("examples")
    ]

    assert undocumented == []


@pytest.mark.parametrize("ce_type", ALL_TYPES)
def test_every_contract_and_nested_model_or_enum_has_a_description(ce_type):
    json_schema = registry.types()[ce_type].model_json_schema()
    models = {json_schema["title"]: json_schema, **json_schema.get("$defs", {})}

    assert [name for name, model in models.items() if not model.get("description")] == []


def test_every_category_has_a_label_for_the_complaint_page():
    assert set(CATEGORY_LABELS) == set(Category)


def test_the_committed_asyncapi_document_and_schemas_match_the_code():
    assert load(ROOT / "docs" / "asyncapi.json") == schema.asyncapi_document(), (
        "run `python -m contracts.schema` and commit docs/"
    )
    for ce_type, expected in schema.json_schemas().items():
        assert load(ROOT / "docs" / "schemas" / f"{ce_type}.json") == expected, ce_type


def test_the_asyncapi_document_has_every_topic_its_dlq_and_every_event():
    channels = schema.asyncapi_document()["channels"].values()
    names_by_address = {c["address"]: {m.get("name") for m in c["messages"].values()} for c in channels}

    assert set(names_by_address) == {*TOPICS.values(), *(f"{t}.dlq" for t in TOPICS.values())}
    for cls in registry.types().values():
        on_topic = cls.__name__ in names_by_address[TOPICS[cls.type_name.split(".")[1]]]
        assert on_topic == cls.public, f"{cls.__name__}: public events only, and all of them"


# --- the Kafka binary mode ---------------------------------------------------------------------


def test_the_kafka_binary_mode_round_trip_keeps_every_attribute():
    envelope = an_envelope()

    key, value, headers = to_kafka(envelope)

    assert key == b"c-2026-000042"
    assert from_kafka(value, headers) == envelope


def test_the_kafka_binary_mode_round_trip_keeps_an_envelope_without_optional_attributes():
    envelope = an_envelope(causationid=None, traceparent=None, tracestate=None)

    assert from_kafka(*to_kafka(envelope)[1:]) == envelope


def test_the_kafka_binary_mode_is_the_documented_wire_format_byte_for_byte():
    # Consumers outside this repository read these bytes (docs/asyncapi.json): a library swap or a
    # serialiser default must not change a header name, the time's offset form or the JSON spacing.
    envelope = an_envelope(data={"complaint_id": "c-2026-000042", "description": "colis arrivé abîmé"})

    _, value, headers = to_kafka(envelope)

    assert value == '{"complaint_id":"c-2026-000042","description":"colis arrivé abîmé"}'.encode()
    assert headers == [
        ("ce_id", b"0b6f1c2e-8a4e-5d7c-9a57-3f1d1b2e4c6a"),
        ("ce_type", b"complaints.intake.ComplaintFiled.v1"),
        ("ce_source", b"/services/intake"),
        ("ce_subject", b"c-2026-000042"),
        ("ce_time", b"2026-03-14T09:12:03.250000+00:00"),
        ("ce_specversion", b"1.0"),
        ("content-type", b"application/json"),
        ("ce_correlationid", b"7d3e9a40-1c55-4b8e-9f0a-2b6c8d1e5f37"),
        ("ce_causationid", b"req-5521"),
        ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", b"vendor=opaque"),
    ]


def test_a_message_without_a_required_header_is_malformed_and_names_the_header():
    _, value, headers = to_kafka(an_envelope())
    without_type = [(k, v) for k, v in headers if k != "ce_type"]

    with pytest.raises(MalformedMessage, match="missing CloudEvents header.*ce_type"):
        from_kafka(value, without_type)


@pytest.mark.parametrize(
    ("header", "value", "problem"),
    [
        ("ce_id", None, "missing.*ce_id"),  # consumers deduplicate on it: never made up on read
        ("ce_time", None, "missing.*ce_time"),
        ("ce_subject", None, "missing.*ce_subject"),
        ("ce_correlationid", None, "missing.*ce_correlationid"),
        ("ce_specversion", b"0.3", "ce_specversion must be 1.0"),
        ("ce_time", b"2026-03-14T09:12:03", "invalid CloudEvents attributes"),
    ],
)
def test_a_message_missing_an_attribute_we_require_or_of_another_version_is_malformed(header, value, problem):
    _, body, headers = to_kafka(an_envelope())
    headers = [(k, v) for k, v in headers if k != header] + ([(header, value)] if value else [])

    with pytest.raises(MalformedMessage, match=problem):
        from_kafka(body, headers)


def test_a_message_whose_value_is_not_json_is_malformed():
    _, _, headers = to_kafka(an_envelope())

    with pytest.raises(MalformedMessage, match="not JSON"):
        from_kafka(b"complaint: driver nearly hit me", headers)


def test_a_message_whose_value_is_a_json_array_is_malformed():
    _, _, headers = to_kafka(an_envelope())

    with pytest.raises(MalformedMessage, match="must be a JSON object"):
        from_kafka(b'[{"complaint_id": "c-2026-000042"}]', headers)


def test_an_unknown_event_type_is_reported_as_unknown():
    with pytest.raises(UnknownEventType, match="complaints.intake.ComplaintWhispered.v1"):
        registry.decode("complaints.intake.ComplaintWhispered.v1", {})


# --- validation names the field and the rule -----------------------------------------------------


def test_a_callback_to_a_phone_number_not_in_e164_is_rejected_naming_the_field():
    data = stored_sample(CALLBACK) | {"phone": "07700 900123"}

    with pytest.raises(MalformedMessage, match=r"(?s)phone.*should match pattern"):
        registry.decode(CALLBACK, data)


def test_a_complainant_phone_not_in_e164_is_rejected_naming_the_nested_field():
    data = stored_sample(FILED)
    data["complainant"] = data["complainant"] | {"phone": "+0044 7700 900123"}

    with pytest.raises(MalformedMessage, match=r"complainant\.phone"):
        registry.decode(FILED, data)


def test_a_complaint_from_nobody_we_can_identify_or_reach_is_rejected():
    data = stored_sample(FILED) | {"complainant": {"display_name": "Sam"}}

    with pytest.raises(MalformedMessage, match="customer_id, seller_id, email, phone or social_handle"):
        registry.decode(FILED, data)


def test_a_filing_time_without_a_timezone_is_rejected():
    data = stored_sample(FILED) | {"filed_at": "2026-03-14T09:12:03"}

    with pytest.raises(MalformedMessage, match="filed_at"):
        registry.decode(FILED, data)


# --- evolution -----------------------------------------------------------------------------------


def test_an_old_version_is_upcast_to_the_current_one_on_decode():
    # A throwaway pair: v2 split the single "name" of v1 into given and family names.
    fresh = Registry()

    class PartnerNotifiedV1(Event):
        type_name = "complaints.test.PartnerNotified"
        version = 1
        complaint_id: str
        name: str

    class PartnerNotifiedV2(Event):
        type_name = "complaints.test.PartnerNotified"
        version = 2
        complaint_id: str
        given_name: str
        family_name: str

    fresh.register(PartnerNotifiedV1)
    fresh.register(PartnerNotifiedV2)

    @fresh.upcaster(PartnerNotifiedV1.ce_type(), PartnerNotifiedV2.ce_type())
    def split_name(data: dict[str, Any]) -> dict[str, Any]:
        given, _, family = data.pop("name").partition(" ")
        return data | {"given_name": given, "family_name": family}

    decoded = fresh.decode(
        "complaints.test.PartnerNotified.v1", {"complaint_id": "c-2026-000042", "name": "Priya Raman"}
    )

    assert decoded == PartnerNotifiedV2(complaint_id="c-2026-000042", given_name="Priya", family_name="Raman")
