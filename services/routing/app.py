"""Wiring of the routing service: settings, rules, runtime, agent API; ``python -m services.routing.app`` runs it."""

from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from contracts import TOPICS, registry
from services.kernel.commands import Snapshots
from services.kernel.lease import Lease
from services.kernel.periodic import Periodic
from services.kernel.runtime import Runtime
from services.kernel.startup import load_settings, run_http_service
from services.kernel.web import allow_browser_origins, service_app
from services.routing import handlers
from services.routing.adapters.orders import HttpOrderPrices
from services.routing.application import GoodwillLimits, RepeatRule, Routing
from services.routing.projections import PROJECTIONS, Timers
from services.routing.rules import DEFAULT_RULES, Rules, RulesError, load_rules
from services.routing.settings import RoutingSettings

log = logging.getLogger("routing")


def create_app(settings: RoutingSettings | None = None, rules: Rules | None = None) -> FastAPI:
    settings = settings or RoutingSettings()
    rules = rules or load_rules(settings.rules_path or DEFAULT_RULES)
    runtime = Runtime.create(settings, registry, TOPICS["routing"], PROJECTIONS)
    orders = HttpOrderPrices(settings.order_system_url)
    routing = Routing(
        runtime.store,
        rules,
        orders,
        RepeatRule(settings.repeat_contacts, timedelta(hours=settings.repeat_window_hours)),
        GoodwillLimits(settings.goodwill_ceiling, settings.goodwill_max),
        snapshots=Snapshots(runtime.store.db),
    )
    timers = Timers(runtime.store.db)

    async def fire_due_timers() -> None:
        """The cases whose timer is due, each decided on its own stream (so a timer fires once
        even if two replicas' rounds overlapped)."""
        now = datetime.now(UTC)
        if fired := await routing.fire_due_timers(await timers.due(now), now):
            log.info("fired %d due timer(s)", fired)

    ticker = Periodic(
        "routing-timers",
        fire_due_timers,
        Lease(runtime.store.db, "routing-timers", max(settings.timer_interval_s * 3, settings.lease_ttl_s)),
        settings.timer_interval_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start([TOPICS["intake"], TOPICS["notify"]])
        ticker.start()
        try:
            yield
        finally:  # also when the server (or a test using the app) fails: no producer left running
            await ticker.stop()
            await runtime.stop()
            await orders.aclose()

    handlers.subscribe(runtime, routing)
    app = service_app(
        "Complaint routing",
        "Agents, partner teams and callbacks: who handles each complaint, and when.",
        lifespan,
        runtime,
        settings.max_body_bytes,
    )
    app.state.services = handlers.Services(settings, runtime, routing)
    handlers.add_routes(app)
    allow_browser_origins(app, settings.cors_origins)  # the agent desktop and partner view (intake's pages)
    return app


def main() -> None:
    settings = load_settings(RoutingSettings)
    try:
        rules = load_rules(settings.rules_path or DEFAULT_RULES)
    except (RulesError, OSError) as exc:  # a bad rules file stops start-up, naming the rule and line
        print(f"invalid setting RULES_PATH: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run_http_service(settings, lambda: create_app(settings, rules))


if __name__ == "__main__":
    main()
