"""Routing rules as data: which agents or team a complaint goes to, from a versioned JSON file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.intake import Assurance, Category
from contracts.routing import EscalationReason

#: The rules shipped with the service; a deployment may point elsewhere.
DEFAULT_RULES = Path(__file__).with_name("rules.json")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgentsWithSkill(_Strict):
    """Route to the roster's agents that have ``skill``."""

    kind: Literal["agents_with_skill"]
    skill: Category


class PartnerTeam(_Strict):
    """Route straight to a partner team; ``only`` means no agent may take it instead."""

    kind: Literal["partner_team"]
    team_id: str = Field(min_length=1)
    only: bool = False


class Supervisor(_Strict):
    """Escalate to the supervisor queue with ``reason``."""

    kind: Literal["supervisor"]
    reason: EscalationReason


Target = Annotated[AgentsWithSkill | PartnerTeam | Supervisor, Field(discriminator="kind")]


class Rule(_Strict):
    """One rule: when category (and, if given, region and assurance) match, go to ``target``."""

    categories: list[Category] = Field(min_length=1)
    regions: list[str] | None = None
    assurance: list[Assurance] | None = None
    target: Target

    def matches(self, category: Category, region: str | None, assurance: Assurance) -> bool:
        return (
            category in self.categories
            and (self.regions is None or region in self.regions)
            and (self.assurance is None or assurance in self.assurance)
        )


class Rules(_Strict):
    """A rules file: its format version and the rules, the first match winning."""

    version: Literal[1]
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_category_has_a_route(self) -> Rules:
        # Found at start-up rather than when the first complaint of that category arrives.
        covered = {c for r in self.rules if r.regions is None and r.assurance is None for c in r.categories}
        if missing := [c.value for c in Category if c not in covered]:
            raise ValueError(f"no rule without region or assurance limits covers {missing}")
        return self


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the rule, its line and the field."""


class NoRoute(LookupError):
    """No rule matches: the rules file must end with a rule for every category."""


def route(rules: Rules, category: Category, region: str | None, assurance: Assurance):
    """The target of the first rule that matches the complaint."""
    for rule in rules.rules:
        if rule.matches(category, region, assurance):
            return rule.target
    raise NoRoute(
        f"no routing rule matches category {category.value!r} in region {region!r} with assurance {assurance.value!r}"
    )


def parse_rules(text: str, source: str = "rules") -> Rules:
    """Validate the rules JSON; every problem is reported as ``<source> rule <i> (line <n>): ...``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RulesError(f"{source} line {exc.lineno}: not valid JSON: {exc.msg}") from None
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        lines = _rule_lines(text)
        problems = []
        for error in exc.errors():
            loc = list(error["loc"])
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
                index, field = loc[1], ".".join(str(p) for p in loc[2:] if p not in _TAGS)
                where = f"rule {index}" + (f" (line {lines[index]})" if index < len(lines) else "")
                problems.append(f"{where}: {field or 'the rule'}: {error['msg']}")
            else:
                problems.append(f"{'.'.join(map(str, loc)) or 'the file'}: {error['msg']}")
        raise RulesError(f"{source} is invalid:\n  " + "\n  ".join(problems)) from None


def load_rules(path: Path = DEFAULT_RULES) -> Rules:
    """Read and validate a rules file (at start-up: a bad file stops the service)."""
    return parse_rules(path.read_text(), str(path))


#: Discriminator tags pydantic puts in error locations; they are not fields of the file.
_TAGS = {"agents_with_skill", "partner_team", "supervisor"}


def _rule_lines(text: str) -> list[int]:
    """The line on which each element of the ``rules`` array starts (json keeps no positions)."""
    match = re.search(r'"rules"\s*:\s*\[', text)
    if match is None:
        return []
    decoder, pos, lines = json.JSONDecoder(), match.end(), []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        lines.append(text.count("\n", 0, pos) + 1)
        try:
            _, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return lines
