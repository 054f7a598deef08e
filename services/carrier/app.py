"""Wiring of the carrier service: settings, carriers, order system, runtime, re-checks.

``python -m services.carrier.app`` runs it.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from contracts import TOPICS, registry
from contracts.carrier import Carrier
from services.carrier import handlers
from services.carrier.adapters.auspost import AusPostTracking
from services.carrier.adapters.fedex import FedExTracking
from services.carrier.adapters.orders import HttpOrderBook
from services.carrier.adapters.tracking import CarrierGateway
from services.carrier.adapters.ups import UpsTracking
from services.carrier.adapters.usps import UspsTracking
from services.carrier.application import Shipments
from services.carrier.projections import PROJECTIONS, OpenWatches
from services.carrier.rechecks import Rechecks
from services.carrier.settings import CarrierSettings
from services.kernel.lease import Lease
from services.kernel.outage import quiet_retry_loops
from services.kernel.periodic import Periodic
from services.kernel.ratelimit import RateLimit
from services.kernel.resilience import RetryPolicy
from services.kernel.runtime import Runtime
from services.kernel.startup import load_settings, run_http_service
from services.kernel.web import allow_browser_origins, service_app


def carrier_gateway(s: CarrierSettings, db: AsyncDatabase) -> CarrierGateway:
    timeout, size = s.carrier_timeout_s, s.carrier_max_answer_bytes
    adapters = {
        Carrier.FEDEX: FedExTracking(s.fedex_url, s.fedex_client_id, s.fedex_client_secret, timeout, size),
        Carrier.UPS: UpsTracking(s.ups_url, s.ups_client_id, s.ups_client_secret, timeout, size),
        Carrier.USPS: UspsTracking(s.usps_url, s.usps_client_id, s.usps_client_secret, timeout, size),
        Carrier.AUSPOST: AusPostTracking(
            s.auspost_url, s.auspost_api_key, s.auspost_password, s.auspost_account_number, timeout, size
        ),
    }
    policy = RetryPolicy(s.carrier_attempts, s.carrier_backoff_s, s.carrier_backoff_max_s, s.carrier_retry_after_max_s)
    return CarrierGateway(
        adapters,
        policy,
        s.breaker_failures,
        s.breaker_reset_s,
        s.tracking_cache_s,
        RateLimit(db, "carrier-requests", s.carrier_requests_per_minute, timedelta(minutes=1)),
        s.carrier_rate_wait_s,
    )


def create_app(settings: CarrierSettings | None = None) -> FastAPI:
    settings = settings or CarrierSettings()
    runtime = Runtime.create(settings, registry, TOPICS["carrier"], PROJECTIONS)
    quiet_retry_loops(settings.outage_reminder_s, "services.carrier.rechecks")  # a line per round in outages
    orders, gateway = HttpOrderBook(settings.order_system_url), carrier_gateway(settings, runtime.store.db)
    shipments = Shipments(runtime.store, orders, gateway.check)
    interval = settings.recheck_interval_s or 3600.0
    rechecks = Rechecks(shipments, OpenWatches(runtime.store.db), interval)
    ticker = Periodic("rechecks", rechecks.round, Lease(runtime.store.db, "rechecks", 2 * interval), interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start([TOPICS["intake"], TOPICS["routing"]])
        if settings.recheck_interval_s:
            ticker.start()
        try:
            yield
        finally:  # also when the server (or a test using the app) fails: nothing left consuming
            await ticker.stop()
            await runtime.stop()
            await gateway.aclose()
            await orders.aclose()

    handlers.subscribe(runtime, shipments)
    app = service_app(
        "Carrier",
        "What happened to the parcel: normalized statuses from FedEx, UPS, USPS and "
        "Australia Post, order summaries, and carriers' pushed exceptions.",
        lifespan,
        runtime,
        settings.max_body_bytes,
    )
    app.state.services = handlers.Services(settings, runtime, shipments, gateway, rechecks)
    handlers.add_routes(app)
    allow_browser_origins(app, settings.cors_origins)  # the agent desktop's carrier panel (intake's pages)
    return app


def main() -> None:
    settings = load_settings(CarrierSettings)
    run_http_service(settings, lambda: create_app(settings))


if __name__ == "__main__":
    main()
