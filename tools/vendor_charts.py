"""Copy Chart.js (pinned in tools/charts/package.json and its lock) into the intake service's static
assets, so the supervisors' dashboard loads it from our own origin, never from a CDN.

Run before building the wheel or the image, and by `make up` and `make test` (idempotent: nothing
is fetched when the copy is there and matches the pin). Needs npm once, for `npm ci`.

    python -m tools.vendor_charts
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tools" / "charts"
VENDOR = ROOT / "services" / "intake" / "static" / "vendor"
#: What the page loads, and the licence that must travel with it.
FILES = {"dist/chart.umd.min.js": "chart.umd.min.js", "LICENSE.md": "chart.js-LICENSE.md"}


def pinned() -> str:
    return json.loads((PACKAGE / "package.json").read_text())["dependencies"]["chart.js"]


def vendored() -> Path:
    """The vendored script, copied first if missing or of another version than the pin."""
    stamp = VENDOR / "chart.js-VERSION"
    script = VENDOR / FILES["dist/chart.umd.min.js"]
    if script.exists() and stamp.exists() and stamp.read_text().strip() == pinned():
        return script
    source = PACKAGE / "node_modules" / "chart.js"
    if (
        not (source / "package.json").exists()
        or json.loads((source / "package.json").read_text())["version"] != pinned()
    ):
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed once to fetch Chart.js (tools/charts); install Node.js")
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=PACKAGE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise SystemExit(f"npm ci in tools/charts failed:\n{done.stdout}\n{done.stderr}")
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, target in FILES.items():
        shutil.copyfile(source / name, VENDOR / target)
    stamp.write_text(pinned() + "\n")
    return script


if __name__ == "__main__":
    print(f"Chart.js {pinned()}: {vendored().relative_to(ROOT)}", file=sys.stderr)
