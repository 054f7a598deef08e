"""The routing service's settings (environment variables; defaults run the local stack)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from services.kernel.settings import DeskApiSettings


class RoutingSettings(DeskApiSettings):
    production_secrets: ClassVar[dict[str, int]] = {"signing_key": 32}
    production_required: ClassVar[tuple[str, ...]] = ("order_system_url", "cors_origins")

    service_name: str = Field("routing", description="Name used in logs, traces and the database name.")
    http_port: int = Field(8002, description="Port of the routing HTTP server (agent API).")
    rules_path: Path | None = Field(
        None,
        description="The routing rules file (JSON, validated at start-up: "
        "a bad file stops the service naming the rule and line); "
        "unset: the rules.json packaged with the service.",
    )
    timer_interval_s: float = Field(
        15.0, gt=0, description="How often due timers (partner SLAs) are looked for; a timer fires at most this late."
    )
    repeat_contacts: int = Field(
        4,
        ge=2,
        description="This many messages or callbacks on one case within "
        "REPEAT_WINDOW_HOURS, with no progress, escalate it.",
    )
    repeat_window_hours: float = Field(24.0, gt=0, description="The window of the repeated-contacts rule.")
    order_system_url: str = Field(
        "http://127.0.0.1:8090",
        description="Base URL of the order system: a "
        "resolution action is checked against the case's order (its lines, prices, "
        "shipping fees, currency) as it says.",
    )
    goodwill_ceiling: Decimal = Field(
        Decimal("25.00"),
        ge=0,
        description="Goodwill credits an agent may give "
        "on one case (in the order's currency); above it, a supervisor must.",
    )
    goodwill_max: Decimal = Field(
        Decimal("250.00"), ge=0, description="Goodwill credits on one case that even a supervisor may not exceed."
    )
