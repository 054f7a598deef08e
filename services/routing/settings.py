"""The routing service's settings (environment variables; defaults run the local stack)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from services.kernel.settings import KernelSettings


class RoutingSettings(KernelSettings):
    production_secrets: ClassVar[dict[str, int]] = {"signing_key": 32}
    production_required: ClassVar[tuple[str, ...]] = ("order_system_url", "cors_origins")

    service_name: str = Field("routing", description="Name used in logs, traces and the database name.")
    http_host: str = Field("127.0.0.1", description="Address the routing HTTP server (agent API) listens on.")
    http_port: int = Field(8002, description="Port of the routing HTTP server (agent API).")
    signing_key: str = Field("dev-only-signing-key-change-me-0123456789",
                             description="HMAC key of agents' bearer tokens (role agent or supervisor); the "
                                         "same key as intake's. A secret in production."
                                         " Key ring `kid:secret[,kid:secret…]`: the first signs, every listed key "
                                         "verifies (rotation: docs/deploying.md).")
    rules_path: Path | None = Field(None, description="The routing rules file (JSON, validated at start-up: "
                                                      "a bad file stops the service naming the rule and line); "
                                                      "unset: the rules.json packaged with the service.")
    max_body_bytes: int = Field(100_000, gt=0, description="Largest request body accepted (413 above).")
    timer_interval_s: float = Field(15.0, gt=0, description="How often due timers (partner SLAs) are looked "
                                                           "for; a timer fires at most this late.")
    repeat_contacts: int = Field(4, ge=2, description="This many messages or callbacks on one case within "
                                                      "REPEAT_WINDOW_HOURS, with no progress, escalate it.")
    repeat_window_hours: float = Field(24.0, gt=0, description="The window of the repeated-contacts rule.")
    cors_origins: str = Field("http://127.0.0.1:8001,http://localhost:8001",
                              description="Comma-separated origins whose pages may call this API from the "
                                          "browser (the agent desktop and partner view, served by intake).")
    order_system_url: str = Field("http://127.0.0.1:8090", description="Base URL of the order system: a "
                                  "resolution action is checked against the case's order (its lines, prices, "
                                  "shipping fees, currency) as it says.")
    goodwill_ceiling: Decimal = Field(Decimal("25.00"), ge=0, description="Goodwill credits an agent may give "
                                      "on one case (in the order's currency); above it, a supervisor must.")
    goodwill_max: Decimal = Field(Decimal("250.00"), ge=0, description="Goodwill credits on one case that "
                                  "even a supervisor may not exceed.")
