"""Routing rules are data: where each complaint goes; a broken file stops start-up, named."""

from __future__ import annotations

import json

import pytest

from contracts.intake import Assurance, Category
from contracts.routing import EscalationReason
from services.routing.rules import (
    DEFAULT_RULES,
    AgentsWithSkill,
    PartnerTeam,
    RulesError,
    Supervisor,
    load_rules,
    parse_rules,
    route,
)

RULES = load_rules()


def test_account_locked_goes_to_the_security_team_only():
    target = route(RULES, Category.ACCOUNT_LOCKED, "uk-south", Assurance.AUTHENTICATED)

    assert target == PartnerTeam(kind="partner_team", team_id="team-account-security", only=True)


def test_a_locked_out_seller_verified_by_a_one_time_code_reaches_the_security_team_only():
    target = route(RULES, Category.ACCOUNT_LOCKED, None, Assurance.VERIFIED_CONTACT)

    assert target == PartnerTeam(kind="partner_team", team_id="team-account-security", only=True)


def test_an_account_locked_complaint_from_someone_not_verified_at_all_goes_to_a_supervisor():
    target = route(RULES, Category.ACCOUNT_LOCKED, None, Assurance.UNVERIFIED)

    assert target == Supervisor(kind="supervisor", reason=EscalationReason.SECURITY_UNVERIFIED)


def test_a_driver_conduct_complaint_goes_to_agents_with_that_skill():
    target = route(RULES, Category.DELIVERY_DRIVER_CONDUCT, "uk-south", Assurance.UNVERIFIED)

    assert target == AgentsWithSkill(kind="agents_with_skill", skill=Category.DELIVERY_DRIVER_CONDUCT)


def test_the_shipped_rules_route_every_category():
    for category in Category:
        route(RULES, category, None, Assurance.UNVERIFIED)


def broken(index: int, **target) -> str:
    data = json.loads(DEFAULT_RULES.read_text())
    data["rules"][index]["target"] = target
    return json.dumps(data, indent=2)


def test_a_rules_file_naming_an_unknown_skill_fails_naming_the_rule_its_line_and_the_field():
    text = broken(3, kind="agents_with_skill", skill="parcel_whispering")

    with pytest.raises(RulesError) as error:
        parse_rules(text, "rules.json")

    rule_starts = [n for n, line in enumerate(text.splitlines(), 1) if line == "    {"]
    assert f"rule 3 (line {rule_starts[3]}): target.skill" in str(error.value)


def test_a_rule_sending_to_a_team_without_its_id_fails_naming_the_field():
    with pytest.raises(RulesError, match=r"rule 1 \(line \d+\): target.team_id: Field required"):
        parse_rules(broken(1, kind="partner_team"), "rules.json")


def test_a_rules_file_of_an_unknown_version_is_refused():
    data = json.loads(DEFAULT_RULES.read_text()) | {"version": 2}

    with pytest.raises(RulesError, match="version"):
        parse_rules(json.dumps(data))


def test_a_rules_file_that_leaves_a_category_without_a_route_is_refused():
    data = json.loads(DEFAULT_RULES.read_text())
    data["rules"] = [r for r in data["rules"] if r["categories"] != ["refund"]]

    with pytest.raises(RulesError, match="refund"):
        parse_rules(json.dumps(data))


def test_a_rules_file_that_is_not_json_names_the_line():
    with pytest.raises(RulesError, match="line 2"):
        parse_rules('{"version": 1,\n "rules": [,]}')
