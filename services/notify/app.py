"""Wiring of the notify service: settings, templates, runtime, courier, ticker; ``python -m services.notify.app``."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from contracts import TOPICS, registry
from services.kernel.clock import Clock, SystemClock
from services.kernel.lease import Lease
from services.kernel.outage import quiet_retry_loops
from services.kernel.periodic import Periodic
from services.kernel.runtime import Runtime
from services.kernel.startup import load_settings, run_http_service
from services.kernel.web import service_app
from services.notify import handlers
from services.notify.adapters.accounts import AccountDirectory
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.telephony import TwilioStyleTelephony
from services.notify.application import Links, Notify, Policies
from services.notify.courier import Courier
from services.notify.loop_guard import GuardPolicy
from services.notify.messages import TemplateBroken, Templates
from services.notify.projections import Agenda, Outgoing
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)


def create_app(
    settings: NotifySettings | None = None, clock: Clock | None = None, templates: Templates | None = None
) -> FastAPI:
    settings, clock, templates = settings or NotifySettings(), clock or SystemClock(), templates or Templates()
    templates.check()  # a template missing a variable stops start-up here, not at send time
    wake = asyncio.Event()
    runtime = Runtime.create(
        settings,
        registry,
        TOPICS["notify"],
        [lambda db: Outgoing(db, wake.set), Agenda],
        collections=["claims", "committed", "parked"],
    )
    quiet_retry_loops(settings.outage_reminder_s, __name__, "services.notify.courier")  # a line per round in outages
    telephony = TwilioStyleTelephony(
        settings.telephony_url,
        settings.telephony_account_sid,
        settings.telephony_auth_token,
        settings.telephony_caller_id,
    )
    accounts = AccountDirectory(settings.order_system_url)
    notify = Notify(
        runtime.store,
        clock,
        Policies(
            guard=GuardPolicy(max_per_case=settings.max_per_case),
            reminder_after=timedelta(hours=settings.closure_reminder_after_h),
            close_after=timedelta(hours=settings.closure_close_after_h),
            link_ttl=timedelta(hours=settings.link_ttl_h),
            claim_expiry=timedelta(seconds=settings.claim_expiry_s),
        ),
        Links(
            settings.public_url,
            settings.signing_key,
            settings.mail_domain,
            settings.case_page_url,
            timedelta(days=settings.case_link_days) if settings.filing_receipts else None,
        ),
        telephony,
        accounts,
        settings.agent_endpoint_template,
    )
    mailer = SmtpMailer(
        settings.smtp_host, settings.smtp_port, settings.smtp_username, settings.smtp_password, settings.smtp_starttls
    )
    courier = Courier(runtime.store, notify, templates, mailer, telephony, settings, wake)
    # The courier sends what is due as soon as it is queued (woken) or due; the ticker checks the
    # closure loop's timers. Each on one replica at a time.
    loops = [
        Periodic("courier", courier.deliver_due, courier.lease, 0.5, wake=wake, first_after_s=0),
        Periodic(
            "ticker",
            notify.tick,
            Lease(runtime.store.db, "ticker", max(settings.tick_interval_s * 3, settings.lease_ttl_s)),
            settings.tick_interval_s,
        ),
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start([TOPICS["intake"], TOPICS["routing"]])
        for loop in loops:
            loop.start()
        try:
            yield
        finally:  # also when the server (or a test using the app) fails: nothing left consuming
            courier.halt()
            await asyncio.gather(*(loop.stop() for loop in loops))
            await runtime.stop()
            await telephony.aclose()
            await accounts.aclose()

    handlers.subscribe(runtime, notify)
    app = service_app(
        "Complaint notify",
        'Email, calls and SMS to complainants: the "is this closed?" loop, '
        "callback dial-out, outcomes, one-time codes, and the loop guard.",
        lifespan,
        runtime,
        settings.max_body_bytes,
    )
    app.state.services = handlers.Services(settings, runtime, notify, templates)
    app.state.courier, app.state.courier_loop = courier, loops[0]
    handlers.add_routes(app)
    return app


def main() -> None:
    settings = load_settings(NotifySettings)
    try:
        Templates().check()
    except TemplateBroken as exc:  # before anything connects: exit 2 naming the template and variable
        print(f"notify: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run_http_service(settings, lambda: create_app(settings))


if __name__ == "__main__":
    main()
