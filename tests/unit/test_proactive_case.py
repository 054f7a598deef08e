"""Intake's proactive case: a carrier's pushed exception becomes the complaint the customer would have filed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import contracts
from contracts.carrier import ExceptionReason, ShipmentExceptionDetected, ShipmentStatus
from contracts.intake import Category, Channel
from services.intake.domain import COMPLAINT, proactive_complaint

SAMPLE = (
    Path(contracts.__file__).parent / "samples" / "carrier" / "complaints.carrier.ShipmentExceptionDetected.v1.json"
)


def an_alert(**changes) -> ShipmentExceptionDetected:
    return ShipmentExceptionDetected.model_validate({**json.loads(SAMPLE.read_text()), **changes})


def test_a_weather_delay_opens_a_late_delivery_case_for_the_customer_of_the_order():
    complaint = proactive_complaint(an_alert(), "c-proactive-1", "evt-1")

    [filed] = COMPLAINT.decide(COMPLAINT.initial, complaint, an_alert().detected_at)

    assert (filed.channel, filed.category, filed.complainant.customer_id) == (
        Channel.PROACTIVE,
        Category.LATE_DELIVERY,
        "cust-2002",
    )
    assert (filed.order_id, filed.tracking_numbers) == ("114-5523190-0012345", ["1Z999AA10123456795"])
    assert filed.description.startswith("Opened by us before any complaint: ups reports package 1Z999AA10123456795")
    assert "delayed (weather)" in filed.description and "New estimate: 2026-03-15T18:00:00+00:00" in filed.description


@pytest.mark.parametrize(
    ("status", "reason", "category"),
    [
        (ShipmentStatus.LOST, None, Category.PACKAGE_NOT_RECEIVED),
        (ShipmentStatus.RETURNED_TO_SENDER, None, Category.PACKAGE_NOT_RECEIVED),
        (ShipmentStatus.EXCEPTION, ExceptionReason.DAMAGE, Category.DAMAGED_ITEM),
        (ShipmentStatus.EXCEPTION, ExceptionReason.ADDRESS, Category.WRONG_ADDRESS),
        (ShipmentStatus.EXCEPTION, ExceptionReason.WEATHER, Category.LATE_DELIVERY),
        (ShipmentStatus.EXCEPTION, None, Category.PACKAGE_NOT_RECEIVED),
    ],
)
def test_the_case_is_filed_under_the_category_the_customer_would_have_picked(status, reason, category):
    alert = an_alert(status=status, reason=reason, estimated_delivery_by=None)

    assert proactive_complaint(alert, "c-2", "evt-2").category is category
