"""The routing process refuses to start on a rules file it cannot use, naming the rule and line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from services.routing.rules import DEFAULT_RULES

ROOT = Path(__file__).resolve().parents[3]


def test_a_rules_file_with_an_unknown_skill_stops_start_up_naming_the_rule_and_its_line(tmp_path):
    rules = json.loads(DEFAULT_RULES.read_text())
    rules["rules"][2]["target"]["skill"] = "driver_karaoke"  # not a category anyone has
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(rules, indent=2))

    done = subprocess.run(
        [sys.executable, "-m", "services.routing.app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RULES_PATH": str(bad)},
    )

    assert done.returncode == 2
    # with indent=2 each rule of the "rules" array opens on a line of its own: "    {"
    rule_starts = [n for n, line in enumerate(bad.read_text().splitlines(), 1) if line == "    {"]
    assert f"invalid setting RULES_PATH: {bad} is invalid" in done.stderr
    assert f"rule 2 (line {rule_starts[2]}): target.skill: Input should be" in done.stderr, done.stderr
