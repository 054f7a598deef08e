"""Write the JSON schemas kubeconform checks our custom resources with, from the CRDs themselves.

KEDA's and the Gateway API's CRDs ship in their Go modules, so ``go mod download`` (the Go module
proxy) brings them at a pinned version; the stored version's ``openAPIV3Schema`` becomes
``infra/k8s/schemas/<group>/<kind>_<version>.json``, strict (no field the CRD does not declare),
which is the layout of kubeconform's ``-schema-location``. The files are kept in the repository, so
the tests need no network. Strimzi publishes its CRDs in no registry reachable here: its two
schemas (KafkaTopic, KafkaUser of ``kafka.strimzi.io/v1``) are written by hand from its API
reference, for the fields we use, and this script leaves them alone.

    python -m tools.crd_schemas      # after bumping a version below
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "infra" / "k8s" / "schemas"
#: Go module -> (version, the CRD files in it that describe kinds we render)
MODULES = {
    "github.com/kedacore/keda/v2": (
        "v2.18.1",
        ["config/crd/bases/keda.sh_scaledobjects.yaml", "config/crd/bases/keda.sh_triggerauthentications.yaml"],
    ),
    "sigs.k8s.io/gateway-api": (
        "v1.4.0",
        [
            "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
            "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
        ],
    ),
}


def strict(schema: dict) -> dict:
    """The schema with ``additionalProperties: false`` wherever the CRD lists the properties and
    keeps no unknown fields (what kubeconform's -strict means for a built-in kind)."""
    if not isinstance(schema, dict):
        return schema
    out = {
        k: strict(v) if isinstance(v, dict) else [strict(i) for i in v] if isinstance(v, list) else v
        for k, v in schema.items()
    }
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def module_dir(module: str, version: str) -> Path:
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True, check=True
    )
    return Path(json.loads(done.stdout)["Dir"])


def write_schemas() -> list[Path]:
    written = []
    for module, (version, files) in MODULES.items():
        where = module_dir(module, version)
        for name in files:
            crd = yaml.safe_load((where / name).read_text())
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"].lower()
            for served in (v for v in crd["spec"]["versions"] if v.get("storage")):  # the version we write
                schema = strict(served["schema"]["openAPIV3Schema"])
                schema["$comment"] = f"from {module}@{version} {name} (python -m tools.crd_schemas)"
                target = SCHEMAS / group / f"{kind}_{served['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                written.append(target)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(path.relative_to(ROOT))
