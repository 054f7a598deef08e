"""The notify service's settings (environment variables; defaults run the local stack)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.kernel.sealed_codes import DEV_PRIVATE_KEY
from services.kernel.settings import HttpServiceSettings


class NotifySettings(HttpServiceSettings):
    production_secrets: ClassVar[dict[str, int]] = {
        "signing_key": 32,
        "inbound_webhook_secret": 24,
        "telephony_auth_token": 16,
        "code_opening_keys": 44,
    }
    production_required: ClassVar[tuple[str, ...]] = ("public_url", "smtp_host", "telephony_url", "order_system_url")

    service_name: str = Field("notify", description="Name used in logs, traces and the database name.")
    http_port: int = Field(8004, description="Port of the notify HTTP server.")
    public_url: str = Field(
        "http://127.0.0.1:8004",
        description="Base URL of notify as complainants reach it (the one-click links in emails point here).",
    )
    code_opening_keys: str = Field(
        DEV_PRIVATE_KEY,
        description="X25519 private key(s) (base64, comma-separated: the current one first, then "
        "those being retired) that open the one-time codes intake seals for notify (docs/adr/0025). A secret.",
    )
    inbound_webhook_secret: str = Field(
        "dev-only-inbound-webhook-secret",
        description="Bearer token other systems send to POST /api/notifications "
        "and the mail provider to POST /api/bounces (a secret in production).",
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(2525, description="SMTP relay port (the local mailbox simulator listens on 2525).")
    smtp_username: str | None = Field(None, description="SMTP user, if the relay wants one.")
    smtp_password: str | None = Field(None, description="SMTP password, if the relay wants one (a secret).")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    mail_from: str = Field(
        "help@complaints.example.com",
        description="Sender address of messages that are not about a case (codes, reminders).",
    )
    mail_from_name: str = Field("Customer care", description="Display name of the sender.")
    mail_domain: str = Field(
        "complaints.example.com",
        description="Domain of Message-IDs and of the per-case reply address case+<token>@<domain>.",
    )
    send_attempts: int = Field(
        6, ge=1, description="Attempts to hand a message to SMTP or the SMS provider before NotificationFailed."
    )
    send_backoff_s: float = Field(1.0, gt=0, description="First pause between send attempts; doubles each time.")
    send_backoff_max_s: float = Field(300.0, gt=0, description="Longest pause between send attempts.")
    telephony_url: str = Field(
        "http://127.0.0.1:8092",
        description="Base URL of the Twilio-style telephony API (the local simulator listens on 8092).",
    )
    telephony_account_sid: str = Field("AC00000000000000000000000000000000", description="Telephony account sid.")
    telephony_auth_token: str = Field("dev-only-telephony-token", description="Telephony auth token (a secret).")
    telephony_caller_id: str = Field("+441632960000", description="The number calls and SMS come from.")
    order_system_url: str = Field(
        "http://127.0.0.1:8090",
        description="Base URL of the seller-account system: "
        "asked whether an account is locked before a message that needs a login.",
    )
    agent_endpoint_template: str = Field(
        "client:{agent_id}", description="How an agent is dialled: client:<id> (softphone) or a number template."
    )
    max_per_case: int = Field(
        3,
        ge=1,
        description="Loop guard: the same template for the same case (or the "
        "same person, without a case) at most this often.",
    )
    closure_reminder_after_h: float = Field(
        48, gt=0, description="Hours after the closure question to send its one reminder."
    )
    closure_close_after_h: float = Field(
        168, gt=0, description="Hours after the closure question to close the case unconfirmed."
    )
    link_ttl_h: float = Field(168, gt=0, description="Lifetime of the one-click links, in hours.")
    claim_expiry_s: float = Field(
        30.0,
        gt=0,
        description="A call or SMS claimed but not recorded after this "
        "long is taken over (its holder died) and asked again with the same "
        "idempotency key; more than twice the provider's 5 s timeout.",
    )
    tick_interval_s: float = Field(5.0, gt=0, description="How often timers (reminders, call retries) are checked.")
    case_page_url: str = Field(
        "http://127.0.0.1:8001",
        description="Base URL of intake's pages as complainants "
        "reach them: the receipt of a filing links to the case page there.",
    )
    case_link_days: int = Field(
        30, gt=0, description="Lifetime of the receipt's link to the case page, in days (intake's ACCESS_TOKEN_DAYS)."
    )
    filing_receipts: bool = Field(
        True,
        description="Send a receipt (email, else SMS) when a complaint is filed, "
        "with its short reference and the link to its case page.",
    )
