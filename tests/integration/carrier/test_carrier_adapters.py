"""Each carrier adapter over real HTTP against the carrier simulator: OAuth, the carrier's shape, the mapping."""

from __future__ import annotations

import httpx
import pytest

from contracts.carrier import FailureCode, Handover, PackageRef, ShipmentStatus
from services.carrier.app import carrier_gateway
from services.carrier.domain import Failed, Tracked
from services.carrier.settings import CarrierSettings
from tests.integration.simulators import carrier_simulator_url  # noqa: F401  (session fixture)

NUMBERS = {
    "fedex": "794644790301",
    "ups": "1Z999AA1H000000301",
    "usps": "9400111899223197420301",
    "auspost": "7XX1000634010301",
}


def gateway(url: str, db, **overrides):
    return carrier_gateway(
        CarrierSettings(**{f"{c}_url": url for c in NUMBERS}, carrier_backoff_s=0.01, **overrides), db
    )


@pytest.mark.parametrize("carrier", NUMBERS)
@pytest.mark.parametrize(
    ("scenario", "status", "handover"),
    [
        ("delivered_to_neighbour", ShipmentStatus.DELIVERED, Handover.NEIGHBOUR),
        ("delayed_by_weather", ShipmentStatus.DELAYED, None),
        ("lost", ShipmentStatus.LOST, None),
    ],
)
async def test_each_carrier_is_asked_over_http_with_its_own_auth_and_answers_in_the_normalized_model(
    carrier_simulator_url, db, carrier, scenario, status, handover
):
    number = NUMBERS[carrier]
    async with httpx.AsyncClient(base_url=carrier_simulator_url) as simulator:
        await simulator.put(f"/scenarios/{number}", json={"scenario": scenario, "carrier": carrier})
    carriers = gateway(carrier_simulator_url, db)
    try:
        outcome = await carriers.check(PackageRef(carrier=carrier, tracking_number=number))
    finally:
        await carriers.aclose()

    assert isinstance(outcome, Tracked), outcome
    assert outcome.report.status is status
    assert (outcome.report.delivery.handover if outcome.report.delivery else None) == handover


@pytest.mark.parametrize("carrier", ["fedex", "ups", "usps", "auspost"])
async def test_wrong_credentials_are_a_failure_naming_the_carrier_not_a_crash(carrier_simulator_url, db, carrier):
    secret = {
        "fedex": "fedex_client_secret",
        "ups": "ups_client_secret",
        "usps": "usps_client_secret",
        "auspost": "auspost_password",
    }[carrier]
    carriers = gateway(carrier_simulator_url, db, **{secret: "wrong"})
    try:
        outcome = await carriers.check(PackageRef(carrier=carrier, tracking_number=NUMBERS[carrier]))
    finally:
        await carriers.aclose()

    assert isinstance(outcome, Failed) and outcome.code is FailureCode.CARRIER_UNAVAILABLE
    assert "refused" in outcome.reason and "HTTP 401" in outcome.reason
