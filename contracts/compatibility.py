"""Event contracts never break a subscriber silently: the code's JSON Schemas against the released ones.

``docs/schemas/`` keeps the JSON Schema of every event type as last released (committed). A
change is backward compatible when a subscriber reading with the released schema still accepts
every new event, and the service still reads every event its log already holds: new optional
fields, new enum values, new event types, other words in descriptions. Anything else (a field
removed or renamed, a type or a limit changed, a new required field, an enum value removed) is
breaking: it needs a new ``version`` of the event and an upcaster from the old one
(``registry.upcaster``), which this check accepts in place of the old type.

Run ``python -m contracts.compatibility`` (exit 1 on a breaking change; it prints each
difference in plain words).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Words that describe a field but do not constrain it: changing them breaks nobody.
ANNOTATIONS = frozenset({"title", "description", "examples", "default", "$comment", "$id", "$schema"})
#: Constraints a subscriber's validator applies: any change of one is a change of the contract.
CONSTRAINTS = (
    "const",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
)


@dataclass(frozen=True)
class Difference:
    """One difference between the released schema of ``event`` and the code's, at ``field``."""

    event: str
    field: str
    words: str
    breaking: bool

    def __str__(self) -> str:
        verdict = "BREAKING" if self.breaking else "compatible"
        return f"{verdict}: {self.event}: {self.field or '(the event)'}: {self.words}"


def differences(
    released: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], upcast: frozenset[str] = frozenset()
) -> list[Difference]:
    """Every difference between the released schemas and the code's, by CloudEvents type; a
    released type the code no longer has is fine only if ``upcast`` (it has an upcaster)."""
    found: list[Difference] = []
    for event, old in sorted(released.items()):
        if event not in current:
            if event in upcast:
                found.append(Difference(event, "", "replaced by a new version; an upcaster reads it", False))
            else:
                found.append(
                    Difference(
                        event,
                        "",
                        "the event type is gone and no upcaster reads it (bump the "
                        "version and register an upcaster from this one)",
                        True,
                    )
                )
            continue
        _compare(event, "", old, current[event], old, current[event], found)
    for event in sorted(set(current) - set(released)):
        found.append(Difference(event, "", "a new event type", False))
    return found


def breaking(found: list[Difference]) -> list[Difference]:
    return [d for d in found if d.breaking]


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = {**root.get("$defs", {})[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _branches(node: dict[str, Any], root: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The alternatives of a node (``anyOf``) other than null, and whether null is one."""
    options = [_resolve(o, root) for o in node.get("anyOf", node.get("oneOf", [node]))]
    return [o for o in options if o.get("type") != "null"], len(options) != len(
        [o for o in options if o.get("type") != "null"]
    )


def _compare(
    event: str,
    field: str,
    old: dict[str, Any],
    new: dict[str, Any],
    old_root: dict[str, Any],
    new_root: dict[str, Any],
    found: list[Difference],
) -> None:
    def say(words: str, is_breaking: bool = True) -> None:
        found.append(Difference(event, field, words, is_breaking))

    old, new = _resolve(old, old_root), _resolve(new, new_root)
    (old_options, old_null), (new_options, new_null) = _branches(old, old_root), _branches(new, new_root)
    if old_null != new_null:
        say(
            "may now be null (a subscriber would refuse it)"
            if new_null
            else "may no longer be null (events already stored hold nulls)"
        )
    if len(old_options) != 1 or len(new_options) != 1:
        if _canonical(old_options, old_root) != _canonical(new_options, new_root):
            say("its alternatives changed")
        return
    old, new = old_options[0], new_options[0]
    if old.get("type") != new.get("type"):
        say(f"its type changed from {old.get('type')} to {new.get('type')}")
        return
    for name in CONSTRAINTS:
        if old.get(name) != new.get(name):
            say(f"{name} changed from {old.get(name)!r} to {new.get(name)!r}")
    if "enum" in old or "enum" in new:
        removed = [v for v in old.get("enum", []) if v not in new.get("enum", [])]
        added = [v for v in new.get("enum", []) if v not in old.get("enum", [])]
        if removed or "enum" not in new:
            say(f"enum value(s) {removed} removed (events already stored hold them)")
        if added and "enum" in old:
            say(f"enum value(s) {added} added (subscribers must tolerate values they do not know)", False)
    if "items" in old or "items" in new:
        _compare(event, f"{field}[]", old.get("items", {}), new.get("items", {}), old_root, new_root, found)
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name in old_props:
        path = f"{field}.{name}" if field else name
        if name not in new_props:
            found.append(
                Difference(event, path, "the field was removed (or renamed): a subscriber reading it would fail", True)
            )
            continue
        if name in old_required and name not in new_required:
            found.append(Difference(event, path, "is no longer required: a subscriber counting on it would fail", True))
        _compare(event, path, old_props[name], new_props[name], old_root, new_root, found)
    for name in new_props:
        if name not in old_props:
            path = f"{field}.{name}" if field else name
            if name in new_required:
                found.append(Difference(event, path, "a new required field: events already stored lack it", True))
            else:
                found.append(Difference(event, path, "a new optional field", False))


def _canonical(options: list[dict[str, Any]], root: dict[str, Any]) -> list[str]:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            node = _resolve(node, root)
            return {k: strip(v) for k, v in node.items() if k not in ANNOTATIONS}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return sorted(json.dumps(strip(o), sort_keys=True) for o in options)


def released_schemas(folder: Path) -> dict[str, dict[str, Any]]:
    """The committed schemas: ``<ce_type>.json`` in ``folder``."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def main(folder: Path = Path("docs/schemas")) -> int:
    """Print every difference of the code's schemas from the released ones; 1 if one is breaking."""
    from contracts.envelope import registry
    from contracts.schema import json_schemas

    found = differences(released_schemas(folder), json_schemas(), registry.upcast_types())
    for difference in found:
        print(difference)
    bad = breaking(found)
    print(f"{len(bad)} breaking change(s), {len(found) - len(bad)} compatible one(s) against {folder}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*(Path(a) for a in sys.argv[1:])))
