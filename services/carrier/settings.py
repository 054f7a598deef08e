"""The carrier service's settings (environment variables; defaults run the local stack and its simulators)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.kernel.settings import DeskApiSettings

SIMULATOR = "http://127.0.0.1:8091"


class CarrierSettings(DeskApiSettings):
    production_secrets: ClassVar[dict[str, int]] = {
        "signing_key": 32,
        "tracking_webhook_secret": 24,
        "fedex_client_secret": 1,
        "ups_client_secret": 1,
        "usps_client_secret": 1,
        "auspost_password": 1,
    }
    production_required: ClassVar[tuple[str, ...]] = (
        "order_system_url",
        "cors_origins",
        "fedex_url",
        "ups_url",
        "usps_url",
        "auspost_url",
    )

    service_name: str = Field("carrier", description="Name used in logs, traces and the database name.")
    http_port: int = Field(8003, description="Port of the carrier HTTP server.")
    tracking_webhook_secret: str = Field(
        "dev-only-tracking-webhook-secret",
        description="Shared secret of the tracking webhook: the body's "
        "HMAC-SHA256 in `X-Tracking-Signature: sha256=<hex>`. A secret in production.",
    )
    order_system_url: str = Field(
        "http://127.0.0.1:8090", description="Base URL of the order system (an order's packages, carriers and items)."
    )
    fedex_url: str = Field(SIMULATOR, description="Base URL of the FedEx APIs (OAuth and Track).")
    fedex_client_id: str = Field("sim-fedex-client", description="FedEx API key (OAuth client id).")
    fedex_client_secret: str = Field(
        "sim-fedex-secret", description="FedEx secret key (OAuth client secret). A secret in production."
    )
    ups_url: str = Field(SIMULATOR, description="Base URL of the UPS APIs (OAuth and Tracking).")
    ups_client_id: str = Field("sim-ups-client", description="UPS OAuth client id.")
    ups_client_secret: str = Field("sim-ups-secret", description="UPS OAuth client secret. A secret in production.")
    usps_url: str = Field(SIMULATOR, description="Base URL of the USPS APIs (OAuth and Tracking v3).")
    usps_client_id: str = Field("sim-usps-client", description="USPS OAuth consumer key.")
    usps_client_secret: str = Field(
        "sim-usps-secret", description="USPS OAuth consumer secret. A secret in production."
    )
    auspost_url: str = Field(SIMULATOR, description="Base URL of the Australia Post Shipping and Tracking API.")
    auspost_api_key: str = Field("sim-auspost-key", description="Australia Post API key.")
    auspost_password: str = Field(
        "sim-auspost-password", description="Australia Post API password. A secret in production."
    )
    auspost_account_number: str = Field("1234567890", description="Australia Post account number.")
    carrier_timeout_s: float = Field(5.0, gt=0, description="How long one request to a carrier may take.")
    carrier_attempts: int = Field(
        3, ge=1, le=10, description="Requests per package before CarrierQueryFailed (on 429, 5xx and timeouts)."
    )
    carrier_backoff_s: float = Field(
        0.2, ge=0, description="Base of the exponential backoff between attempts (full jitter)."
    )
    carrier_backoff_max_s: float = Field(5.0, ge=0, description="Longest backoff between attempts.")
    carrier_retry_after_max_s: float = Field(
        30.0,
        ge=0,
        description="A carrier's Retry-After longer than this is not waited for: the query fails as rate limited.",
    )
    breaker_failures: int = Field(5, ge=1, description="Failed requests in a row that open a carrier's circuit.")
    breaker_reset_s: float = Field(
        30.0, gt=0, description="How long an open circuit refuses calls before one trial call (half-open)."
    )
    tracking_cache_s: float = Field(
        60.0, ge=0, description="How long a carrier's answer about a tracking number is reused (0: never)."
    )
    carrier_requests_per_minute: int = Field(
        240,
        ge=1,
        description="Our own limit of requests per carrier per "
        "minute, shared by all replicas (under the carriers' published quotas).",
    )
    carrier_rate_wait_s: float = Field(
        2.0, ge=0, description="How long a request may wait for room under that limit before it fails as rate limited."
    )
    carrier_max_answer_bytes: int = Field(
        1_000_000, gt=0, description="Largest carrier answer read; a larger one marks the package unknown."
    )
    recheck_interval_s: float = Field(
        900.0,
        ge=0,
        description="How often the in-transit packages of open complaints are asked about again (0: never).",
    )
