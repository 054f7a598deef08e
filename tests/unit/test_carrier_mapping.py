"""Each carrier's tracking answers, shaped as the carrier simulator speaks them, in the one normalized model."""

from __future__ import annotations

import pytest

from contracts.carrier import ExceptionReason, Handover, ShipmentStatus
from infra.simulators import carriers as simulator
from services.carrier.adapters import auspost, fedex, ups, usps
from services.carrier.adapters.http import NotFound, Unreadable

PARSE = {"fedex": fedex.parse, "ups": ups.parse, "usps": usps.parse, "auspost": auspost.parse}
NUMBER = {
    "fedex": "794644790138",
    "ups": "1Z999AA10123456795",
    "usps": "9400111899223197428490",
    "auspost": "7XX1000634011427",
}

#: scenario -> (status, reason, handover, estimate given, can still be stopped)
EXPECTED = {
    "label_created": (ShipmentStatus.LABEL_CREATED, None, None, True, True),
    "in_transit": (ShipmentStatus.IN_TRANSIT, None, None, True, True),
    "out_for_delivery": (ShipmentStatus.OUT_FOR_DELIVERY, None, None, True, False),
    "delivered": (ShipmentStatus.DELIVERED, None, Handover.RECIPIENT, False, False),
    "delivered_to_neighbour": (ShipmentStatus.DELIVERED, None, Handover.NEIGHBOUR, False, False),
    "delivered_to_safe_place": (ShipmentStatus.DELIVERED, None, Handover.SAFE_PLACE, False, False),
    "delayed_by_weather": (ShipmentStatus.DELAYED, ExceptionReason.WEATHER, None, True, True),
    "exception_address": (ShipmentStatus.EXCEPTION, ExceptionReason.ADDRESS, None, None, True),
    "returned_to_sender": (ShipmentStatus.RETURNED_TO_SENDER, None, None, False, False),
    "lost": (ShipmentStatus.LOST, None, None, False, False),
}
CASES = [(carrier, scenario) for carrier in PARSE for scenario in EXPECTED]


@pytest.mark.parametrize(("carrier", "scenario"), CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_a_carriers_answer_maps_to_the_normalized_status(carrier, scenario):
    answer = simulator.RENDER[carrier](NUMBER[carrier], scenario)

    report = PARSE[carrier](answer)

    status, reason, handover, estimated, stoppable = EXPECTED[scenario]
    assert (report.status, report.reason, report.stoppable()) == (status, reason, stoppable)
    assert (report.delivery.handover if report.delivery else None) == handover
    if estimated is not None:
        assert (report.estimated_delivery_by is not None) == estimated
    assert report.carrier_status and report.last_event_at is not None and report.last_event_at.tzinfo


@pytest.mark.parametrize("carrier", PARSE)
def test_a_delivery_says_when_and_whether_it_was_signed_for(carrier):
    signed = PARSE[carrier](simulator.RENDER[carrier](NUMBER[carrier], "delivered"))
    left = PARSE[carrier](simulator.RENDER[carrier](NUMBER[carrier], "delivered_to_safe_place"))

    assert signed.delivered_at is not None and signed.delivery.signed is True
    assert left.delivery.signed is False and left.delivery.received_by is None


@pytest.mark.parametrize("carrier", PARSE)
def test_a_weather_delay_carries_the_new_estimate_in_the_destinations_offset(carrier):
    report = PARSE[carrier](simulator.RENDER[carrier](NUMBER[carrier], "delayed_by_weather"))

    estimate = report.estimated_delivery_by
    assert (estimate.hour, estimate.utcoffset()) == (18, simulator.OFFSETS[carrier].utcoffset(None))


@pytest.mark.parametrize("carrier", PARSE)
def test_a_tracking_number_the_carrier_does_not_know_is_not_found(carrier):
    with pytest.raises(NotFound):
        PARSE[carrier](simulator.NOT_FOUND[carrier][1](NUMBER[carrier]))


@pytest.mark.parametrize("carrier", PARSE)
@pytest.mark.parametrize("answer", [{}, [], {"unexpected": True}, None, "text"], ids=repr)
def test_an_answer_of_another_shape_is_unreadable_never_a_crash(carrier, answer):
    with pytest.raises(Unreadable):
        PARSE[carrier](answer)


def test_fedex_says_precisely_whether_a_package_can_still_be_intercepted():
    answer = simulator.fedex(NUMBER["fedex"], "in_transit")
    details = answer["output"]["completeTrackResults"][0]["trackResults"][0]["deliveryDetails"]
    for option in details["deliveryOptionEligibilityDetails"]:
        option["eligibility"] = "INELIGIBLE"

    assert fedex.parse(answer).stoppable() is False  # the general rule would say yes


def test_ups_local_times_take_the_offset_of_the_scan():
    answer = simulator.ups(NUMBER["ups"], "in_transit")
    answer["trackResponse"]["shipment"][0]["package"][0]["activity"][0]["gmtOffset"] = "-05:00"

    report = ups.parse(answer)

    assert report.last_event_at.utcoffset().total_seconds() == -5 * 3600
