"""Event contracts never break a subscriber silently: the code's schemas against the released ones
(``docs/schemas/``), and subscribers that validate with the released schemas accept new events."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import contracts
from contracts.compatibility import breaking, differences, main, released_schemas
from contracts.envelope import registry
from contracts.schema import json_schemas

ROOT = Path(__file__).resolve().parents[2]
RELEASED = ROOT / "docs" / "schemas"
SAMPLES = Path(contracts.__file__).parent / "samples"
AGENT_REGISTERED = "complaints.routing.AgentRegistered.v1"
FILED = "complaints.intake.ComplaintFiled.v1"


def without_field(schemas: dict, event: str, field: str) -> dict:
    changed = copy.deepcopy(schemas)
    changed[event]["properties"].pop(field)
    changed[event]["required"] = [f for f in changed[event].get("required", []) if f != field]
    return changed


def test_every_event_of_the_code_is_compatible_with_the_released_schemas():
    found = differences(released_schemas(RELEASED), json_schemas(), registry.upcast_types())

    assert breaking(found) == [], "\n".join(map(str, breaking(found)))


def test_removing_a_field_from_a_copy_of_a_contract_fails_naming_the_event_and_the_field():
    current = without_field(json_schemas(), AGENT_REGISTERED, "languages")

    [refusal] = breaking(differences(released_schemas(RELEASED), current, registry.upcast_types()))

    assert (refusal.event, refusal.field) == (AGENT_REGISTERED, "languages")
    assert str(refusal) == (
        f"BREAKING: {AGENT_REGISTERED}: languages: the field was removed (or renamed): "
        "a subscriber reading it would fail"
    )


def test_the_check_fails_the_build_and_says_why_in_plain_words(tmp_path, capsys):
    released = tmp_path / "schemas"
    shutil.copytree(RELEASED, released)
    # The release had a field the code no longer has: as if the code dropped it.
    schema = json.loads((released / f"{AGENT_REGISTERED}.json").read_text())
    schema["properties"]["shift"] = {"type": "string", "description": "Early or late."}
    (released / f"{AGENT_REGISTERED}.json").write_text(json.dumps(schema))

    assert main(released) == 1
    assert f"BREAKING: {AGENT_REGISTERED}: shift: the field was removed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, words",
    [
        (
            lambda s: s["properties"]["capacity"].update(type="string"),
            "capacity: its type changed from integer to string",
        ),
        (lambda s: s["properties"]["name"].update(maxLength=100), "name: maxLength changed from 200 to 100"),
        (
            lambda s: (s["properties"].update(shift={"type": "string"}), s["required"].append("shift")),
            "shift: a new required field: events already stored lack it",
        ),
        (
            lambda s: s["$defs"]["Channel"]["enum"].remove("proactive"),
            "channels[]: enum value(s) ['proactive'] removed",
        ),
        (lambda s: s["required"].remove("name"), "name: is no longer required"),
    ],
    ids=["type", "narrowed limit", "new required field", "removed enum value", "no longer required"],
)
def test_a_backward_incompatible_change_is_refused(change, words):
    current = copy.deepcopy(json_schemas())
    change(current[AGENT_REGISTERED])

    refusals = [str(d) for d in breaking(differences(released_schemas(RELEASED), current, registry.upcast_types()))]

    assert any(words in r and AGENT_REGISTERED in r for r in refusals), refusals


def test_a_new_optional_field_and_a_new_enum_value_are_compatible():
    current = copy.deepcopy(json_schemas())
    current[AGENT_REGISTERED]["properties"]["shift"] = {"type": "string", "description": "Early or late."}
    current[AGENT_REGISTERED]["$defs"]["Channel"]["enum"].append("video")

    found = differences(released_schemas(RELEASED), current, registry.upcast_types())

    assert breaking(found) == []
    assert {d.field for d in found if d.event == AGENT_REGISTERED} == {"shift", "channels[]"}


def test_a_breaking_change_passes_once_the_version_is_bumped_with_an_upcaster():
    v2 = AGENT_REGISTERED.replace(".v1", ".v2")
    current = without_field(json_schemas(), AGENT_REGISTERED, "languages")
    current[v2] = current.pop(AGENT_REGISTERED)

    upcast = registry.upcast_types()  # the real ones
    assert breaking(differences(released_schemas(RELEASED), current, upcast | {AGENT_REGISTERED})) == []
    [gone] = breaking(differences(released_schemas(RELEASED), current, upcast))
    assert gone.event == AGENT_REGISTERED and "no upcaster" in gone.words


@pytest.mark.parametrize(
    "sample", sorted(p for p in SAMPLES.rglob("*.v*.json") if p.stem in registry.types()), ids=lambda p: p.stem
)  # (an old version the code reads but no longer makes: not here)
def test_a_subscriber_validating_with_the_released_schema_accepts_the_event_the_code_makes(sample):
    ce_type = sample.stem
    released = json.loads((RELEASED / f"{ce_type}.json").read_text())
    made = registry.types()[ce_type].model_validate_json(sample.read_text()).model_dump(mode="json")

    Draft202012Validator(released, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(made)


def test_a_subscriber_with_the_released_schema_accepts_an_event_with_a_field_added_later():
    released = json.loads((RELEASED / f"{FILED}.json").read_text())
    newer = {**json.loads((SAMPLES / "intake" / f"{FILED}.json").read_text()), "mood": "angry"}

    Draft202012Validator(released).validate(newer)
