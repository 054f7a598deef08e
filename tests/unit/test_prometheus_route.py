"""Every service's /metrics (services/kernel/prometheus.py): its registry, refreshed before each scrape."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import Gauge

from services.kernel.web import service_app


def test_a_service_exports_what_it_registered_after_its_hooks_brought_it_up_to_date():
    app = service_app("Example", "Exports a figure.", None, None, 200)
    waiting = Gauge("example_waiting_cases", "Cases waiting.", registry=app.state.prometheus.registry)

    async def count_again() -> None:
        waiting.set(3)

    app.state.prometheus.before_scrape(count_again)

    answer = TestClient(app).get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert "example_waiting_cases 3.0" in answer.text
    assert "/metrics" not in app.openapi()["paths"]  # for the scraper, not in the API document
