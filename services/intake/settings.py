"""The intake service's settings (environment variables; defaults run the local stack)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from services.kernel.sealed_codes import DEV_PUBLIC_KEY
from services.kernel.settings import HttpServiceSettings


class IntakeSettings(HttpServiceSettings):
    production_secrets: ClassVar[dict[str, int]] = {"signing_key": 32, "inbound_webhook_secret": 24}
    production_required: ClassVar[tuple[str, ...]] = (
        "order_system_url",
        "routing_public_url",
        "carrier_public_url",
        "code_sealing_public_key",
    )

    service_name: str = Field("intake", description="Name used in logs, traces and the database name.")
    http_port: int = Field(8001, description="Port of the intake HTTP server (pages and API).")
    inbound_webhook_secret: str = Field(
        "dev-only-inbound-webhook-secret",
        description="Bearer token the mail provider and social "
        "platforms send to /api/inbound/* (a secret in production).",
    )
    access_token_days: int = Field(30, description="How long a customer's case link stays valid.")
    link_window_hours: int = Field(
        168,
        description="A new contact about an order from the same proven complainant (a customer's login, "
        "a verified contact) joins their case of that order opened within this many hours.",
    )
    max_body_bytes: int = Field(1_000_000, gt=0, description="Largest request body accepted (413 above).")
    callbacks_per_phone: int = Field(3, description="Callback requests allowed per phone number per 10 minutes.")
    callbacks_per_client: int = Field(10, description="Callback requests allowed per client address per 10 minutes.")
    callback_admission_wait_s: float = Field(
        30,
        ge=0,
        description='A "call me" is refused (503 with Retry-After; nothing recorded) while a callback '
        "accepted now would wait this many seconds or more behind those already queued: how long "
        "intake's latest appends waited to be published, plus the Kafka consumer lag of routing and "
        "notify as time (docs/adr/0051). 0: never refused.",
    )
    anonymous_filings_per_client: int = Field(
        10,
        ge=1,
        description="Complaints filed without a login or a verified contact allowed per client address "
        "per minute (the address behind TRUSTED_PROXIES).",
    )
    anonymous_filings_per_order: int = Field(
        10,
        ge=1,
        description="Complaints filed without a login or a verified contact allowed per order_id "
        "per 10 minutes, whoever files them.",
    )
    order_system_url: str = Field(
        "http://127.0.0.1:8090",
        description="Base URL of the order and seller-account system (the contact on file for the locked-out path).",
    )
    code_ttl_s: int = Field(600, description="Lifetime of a one-time verification code.")
    code_sealing_public_key: str = Field(
        DEV_PUBLIC_KEY,
        description="Notify's X25519 public key (base64): one-time codes travel sealed to it, "
        "readable by notify alone (docs/adr/0025; `python -m services.kernel.sealed_codes` makes a pair). Not a "
        "secret, but production refuses the local stack's.",
    )
    routing_public_url: str = Field(
        "http://127.0.0.1:8002",
        description="Routing's agent API as the "
        "browser reaches it: the agent desktop and partner view call it directly "
        "(routing's CORS_ORIGINS must list this service's origin).",
    )
    carrier_public_url: str = Field(
        "http://127.0.0.1:8003",
        description="The carrier service's API as the "
        "browser reaches it: the desk's case page shows each package's status from "
        "it (carrier's CORS_ORIGINS must list this service's origin); empty: no "
        "carrier panel.",
    )
    dev_sign_in: bool = Field(
        False,
        description="Offer the desk's development sign-in (a token for any role, "
        "no password): the local stack only; refused with ENVIRONMENT=production.",
    )
    desk_token_hours: float = Field(
        8, gt=0, description="Lifetime of a token from the desk's development sign-in (DEV_SIGN_IN)."
    )
    metrics_days: int = Field(
        28, ge=1, le=400, description="How many days of filed cases the supervisors' dashboard (/desk/metrics) shows."
    )
    metrics_refresh_s: int = Field(
        30, ge=5, le=3600, description="How often the supervisors' dashboard reads the figures again, in seconds."
    )

    @model_validator(mode="after")
    def _no_dev_sign_in_in_production(self):
        if self.dev_sign_in and self.environment == "production":
            raise ValueError("DEV_SIGN_IN must be false when ENVIRONMENT=production")
        return self
