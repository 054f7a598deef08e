"""The generated AsyncAPI document passes the official AsyncAPI parser (@asyncapi/parser, npm)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from contracts.schema import asyncapi_document

TOOL = Path(__file__).resolve().parents[2] / "tools" / "asyncapi"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None,
    reason="node is not installed: the AsyncAPI parser is a Node package (install Node.js >= 18)",
)


@pytest.fixture(scope="module")
def parser_installed() -> Path:
    """tools/asyncapi with its pinned node_modules, installed by ``npm ci`` on first use."""
    if not (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed once to install tools/asyncapi/node_modules")
        # --ignore-scripts: the parser needs no install script, and one of its dependencies
        # only has a telemetry post-install.
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=TOOL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return TOOL


def validate(document: dict[str, Any], where: Path) -> tuple[int, list[dict[str, Any]], str]:
    """Exit code, diagnostics and raw output of ``node validate.mjs`` on ``document``."""
    path = where / "asyncapi.json"
    path.write_text(json.dumps(document, indent=2))
    done = subprocess.run(["node", "validate.mjs", str(path)], cwd=TOOL, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    diagnostics = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, diagnostics, output


def errors(diagnostics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in diagnostics if d["severity"] == "Error"]


def test_the_generated_asyncapi_document_has_no_error_diagnostics(parser_installed, tmp_path):
    code, diagnostics, output = validate(asyncapi_document(), tmp_path)

    print(output)
    assert errors(diagnostics) == [], output
    assert code == 0, output


def test_the_parser_rejects_a_document_with_a_dangling_reference(parser_installed, tmp_path):
    # Guards the guard: if the parser stopped reporting errors, the test above would prove nothing.
    document = asyncapi_document()
    document["operations"]["publishIntakeEvents"]["channel"] = {"$ref": "#/channels/nowhere"}

    code, diagnostics, output = validate(document, tmp_path)

    assert code == 1, output
    assert any("operations/publishIntakeEvents/channel" in d["path"] for d in errors(diagnostics)), output


def test_the_parser_rejects_an_operation_that_is_neither_send_nor_receive(parser_installed, tmp_path):
    document = asyncapi_document()
    document["operations"]["publishIntakeEvents"]["action"] = "publish"

    code, diagnostics, output = validate(document, tmp_path)

    assert code == 1, output
    assert [d["path"] for d in errors(diagnostics)] == ["operations/publishIntakeEvents/action"]
