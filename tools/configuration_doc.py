"""Writes docs/configuration.md from the settings classes: one table per service, never edited by hand.

python -m tools.configuration_doc
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from services.carrier.settings import CarrierSettings
from services.intake.settings import IntakeSettings
from services.kernel.settings import KernelSettings
from services.notify.settings import NotifySettings
from services.routing.settings import RoutingSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

#: Every service's settings class; the kernel's fields are shared by all of them.
SETTINGS: dict[str, type[BaseSettings]] = {
    "every service (kernel)": KernelSettings,
    "intake": IntakeSettings,
    "routing": RoutingSettings,
    "notify": NotifySettings,
    "carrier": CarrierSettings,
}

HEADER = """# Configuration

Every service reads its settings from environment variables (pydantic-settings, case-insensitive).
The defaults run against the local stack that `make up` starts. Generated from the settings
classes by `python -m tools.configuration_doc` (`make docs`); a unit test keeps it in step.
"""

FOOTER = """
Tracing: `OTEL_TRACES_EXPORTER=console` prints spans; `OTEL_EXPORTER_OTLP_ENDPOINT` sends them over
OTLP/HTTP when `opentelemetry-exporter-otlp` is installed. The W3C `traceparent` travels in each
event's envelope and Kafka headers.

Local stack (`infra/local/stack.sh`): `COMPLAINTS_CACHE` (where jars, binaries, data and logs live;
default `.cache/`), `FERRETDB_SQLITE_PARAMS` (SQLite URI parameters for FerretDB; default
`_txlock=immediate&_pragma=synchronous(normal)`), and `MONGODB_URL` (a real MongoDB instead of FerretDB).
"""


def table(cls: type[BaseSettings], skip: set[str]) -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [
        f"| `{name.upper()}` | `{field.default}` | {field.description} |"
        for name, field in cls.model_fields.items()
        if name not in skip
    ]
    return "\n".join(rows)


def render() -> str:
    shared = set(KernelSettings.model_fields)
    parts = [HEADER]
    for title, cls in SETTINGS.items():
        own = (
            set()
            if cls is KernelSettings
            else {n for n in shared if cls.model_fields[n].default == KernelSettings.model_fields[n].default}
        )
        parts += [f"\n## {title}\n", table(cls, own)]
    return "\n".join(parts) + "\n" + FOOTER


if __name__ == "__main__":
    DOC.write_text(render())
