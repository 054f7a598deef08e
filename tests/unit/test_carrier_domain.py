"""The carrier service's pure domain: tracking numbers, what is news, the order in one sentence, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.carrier import (
    Carrier,
    CarrierQueryFailed,
    CheckTrigger,
    ExceptionReason,
    FailureCode,
    OrderShipmentSummarized,
    PackageRef,
    ShipmentExceptionDetected,
    ShipmentStatus,
    ShipmentStatusReported,
    ShipmentsWatched,
)
from services.carrier.domain import (
    ALERTS,
    WATCH,
    Failed,
    NotWatched,
    RaiseAlert,
    RecordCheck,
    RecordOrderLookupFailed,
    Tracked,
    TrackingReport,
    WatchShipments,
    format_problem,
    guess_carrier,
    normalize_tracking_number,
    reason_in,
    when,
)

NOW = datetime(2026, 3, 14, 9, 12, tzinfo=UTC)
TOMORROW_18 = datetime(2026, 3, 15, 18, 0, tzinfo=UTC)
BOX_OF_6 = PackageRef(
    carrier="ups", tracking_number="1Z999AA10123456784", items=["A", "B", "C", "D", "E", "F"], item_count=6
)
BOX_OF_2 = PackageRef(carrier="ups", tracking_number="1Z999AA10123456795", items=["G", "H"], item_count=2)
DELIVERED = TrackingReport(status=ShipmentStatus.DELIVERED, carrier_status="DELIVERED")
WEATHER = TrackingReport(
    status=ShipmentStatus.DELAYED,
    carrier_status="A severe weather condition has delayed delivery.",
    reason=ExceptionReason.WEATHER,
    estimated_delivery_by=TOMORROW_18,
)


def watching(*packages: PackageRef, items_total: int = 8) -> list:
    return WATCH.decide(
        WATCH.initial,
        WatchShipments(complaint_id="c-1", order_id="114-5523190-0012345", packages=packages, items_total=items_total),
        NOW,
    )


def check(history: list, *outcomes, trigger=CheckTrigger.COMPLAINT) -> list:
    return WATCH.decide(WATCH.fold(history), RecordCheck(complaint_id="c-1", trigger=trigger, outcomes=outcomes), NOW)


def tracked(package: PackageRef, report: TrackingReport) -> Tracked:
    return Tracked(package=package, carrier=Carrier.UPS, report=report)


# --- tracking numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("1Z999AA10123456784", Carrier.UPS),
        ("794644790138", Carrier.FEDEX),
        ("9400111899223197428490", Carrier.USPS),
        ("EA123456789US", Carrier.USPS),
        ("7XX1000634011427", Carrier.AUSPOST),
        ("AB123456789AU", Carrier.AUSPOST),
    ],
)
def test_a_bare_tracking_number_is_recognised_by_its_format(number, carrier):
    assert guess_carrier(number) is carrier and format_problem(carrier, number) is None


def test_a_pasted_tracking_number_loses_its_spaces_and_dashes():
    assert normalize_tracking_number(" 1z 999aa1-0123456784 ") == "1Z999AA10123456784"


def test_a_tracking_number_of_the_wrong_shape_is_refused_saying_the_rule():
    assert format_problem(Carrier.UPS, "1Z123") == (
        "tracking number '1Z123' is not a ups tracking number (1Z followed by 16 letters or digits)"
    )
    assert guess_carrier("NOT-A-NUMBER") is None


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        ("A severe weather condition has delayed delivery.", ExceptionReason.WEATHER),
        ("The address is incomplete", ExceptionReason.ADDRESS),
        ("Held in customs clearance", ExceptionReason.CUSTOMS),
        ("Package damaged in transit", ExceptionReason.DAMAGE),
        ("Delivery attempted, no one home", ExceptionReason.RECIPIENT_UNAVAILABLE),
        ("Something odd", ExceptionReason.OTHER),
    ],
)
def test_a_carriers_words_give_the_reason(words, reason):
    assert reason_in(words) is reason


# --- the watch: only news becomes events ------------------------------------------------------


def test_story_2_reports_both_packages_and_sums_the_order_up_in_one_sentence():
    history = watching(BOX_OF_6, BOX_OF_2)

    events = check(history, tracked(BOX_OF_6, DELIVERED), tracked(BOX_OF_2, WEATHER))

    assert [type(e) for e in events] == [ShipmentStatusReported, ShipmentStatusReported, OrderShipmentSummarized]
    summary = events[-1]
    assert summary.summary == "6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00"
    assert [(p.status, p.can_intercept) for p in summary.packages] == [
        (ShipmentStatus.DELIVERED, False),
        (ShipmentStatus.DELAYED, True),
    ]


def test_the_same_answers_again_are_no_news():
    history = watching(BOX_OF_6, BOX_OF_2)
    history += check(history, tracked(BOX_OF_6, DELIVERED), tracked(BOX_OF_2, WEATHER))

    later_scan = WEATHER.model_copy(update={"last_event_at": NOW, "last_location": "LEEDS, GB"})
    assert check(history, tracked(BOX_OF_6, DELIVERED), tracked(BOX_OF_2, later_scan)) == []


def test_a_changed_estimate_is_news_and_only_that_package_is_reported_again():
    history = watching(BOX_OF_6, BOX_OF_2)
    history += check(history, tracked(BOX_OF_6, DELIVERED), tracked(BOX_OF_2, WEATHER))

    later = WEATHER.model_copy(update={"estimated_delivery_by": TOMORROW_18 + timedelta(days=1)})
    events = check(history, tracked(BOX_OF_6, DELIVERED), tracked(BOX_OF_2, later), trigger=CheckTrigger.RECHECK)

    assert [type(e) for e in events] == [ShipmentStatusReported, OrderShipmentSummarized]
    assert events[0].trigger is CheckTrigger.RECHECK
    assert events[1].summary.endswith("new estimate Monday 18:00")


def test_a_failure_is_reported_once_and_not_again_while_it_lasts():
    history = watching(BOX_OF_2)
    down = Failed(package=BOX_OF_2, code=FailureCode.CARRIER_UNAVAILABLE, reason="ups answered HTTP 503", attempts=3)
    history += check(history, down)

    assert check(history, down) == []
    [failed] = [e for e in history if isinstance(e, CarrierQueryFailed)]
    assert (failed.code, failed.attempts, failed.tracking_number) == (
        FailureCode.CARRIER_UNAVAILABLE,
        3,
        BOX_OF_2.tracking_number,
    )


def test_a_failed_package_counts_as_unknown_in_the_summary():
    history = watching(BOX_OF_6, BOX_OF_2)
    down = Failed(package=BOX_OF_2, code=FailureCode.TIMEOUT, reason="no answer", attempts=3)

    events = check(history, tracked(BOX_OF_6, DELIVERED), down)

    assert events[-1].summary == "6 of 8 items delivered, 2 of unknown status"


def test_checking_a_complaint_that_is_not_watched_is_refused():
    with pytest.raises(NotWatched):
        check([], tracked(BOX_OF_2, WEATHER))


def test_watching_twice_and_failing_the_same_order_lookup_twice_record_nothing_new():
    history = watching(BOX_OF_2)
    assert (
        WATCH.decide(WATCH.fold(history), WatchShipments(complaint_id="c-1", packages=(BOX_OF_2,), items_total=2), NOW)
        == []
    )
    lookup = RecordOrderLookupFailed(
        complaint_id="c-2",
        order_id="o-1",
        code=FailureCode.ORDER_SYSTEM_UNAVAILABLE,
        reason="HTTP 503",
        attempts=3,
        trigger=CheckTrigger.COMPLAINT,
    )
    first = WATCH.decide(WATCH.initial, lookup, NOW)
    assert [type(e) for e in first] == [CarrierQueryFailed] and first[0].tracking_number is None
    assert WATCH.decide(WATCH.fold(first), lookup, NOW) == []
    assert isinstance(watching(BOX_OF_2)[0], ShipmentsWatched)


@pytest.mark.parametrize(
    ("moment", "said"),
    [
        (datetime(2026, 3, 14, 17, 0, tzinfo=UTC), "today 17:00"),
        (datetime(2026, 3, 15, 18, 0, tzinfo=UTC), "tomorrow 18:00"),
        (datetime(2026, 3, 17, 12, 30, tzinfo=UTC), "Tuesday 12:30"),
        (datetime(2026, 3, 30, 9, 0, tzinfo=UTC), "30 Mar 09:00"),
        (datetime(2026, 3, 15, 8, 0, tzinfo=timezone(timedelta(hours=11))), "tomorrow 08:00"),
    ],
)
def test_an_estimate_is_said_as_a_person_says_it_in_the_destinations_local_time(moment, said):
    assert when(moment, NOW) == said


def test_packages_known_only_by_tracking_number_are_counted_as_packages():
    ref = PackageRef(carrier="fedex", tracking_number="794644790138")
    history = watching(ref, items_total=0)

    events = check(history, Tracked(package=ref, carrier=Carrier.FEDEX, report=DELIVERED))

    assert events[-1].summary == "1 of 1 package delivered"


# --- alerts pushed by carriers --------------------------------------------------------------------


def alert(report: TrackingReport):
    return RaiseAlert(
        order_id="114-5523190-0012345", customer_id="cust-2002", carrier=Carrier.UPS, package=BOX_OF_2, report=report
    )


def test_a_pushed_weather_delay_raises_an_alert_once():
    [raised] = ALERTS.decide(ALERTS.initial, alert(WEATHER), NOW)

    assert isinstance(raised, ShipmentExceptionDetected) and raised.subject() == "114-5523190-0012345"
    assert (raised.status, raised.reason, raised.estimated_delivery_by, raised.can_intercept) == (
        ShipmentStatus.DELAYED,
        ExceptionReason.WEATHER,
        TOMORROW_18,
        True,
    )
    assert ALERTS.decide(ALERTS.fold([raised]), alert(WEATHER), NOW) == []


def test_a_pushed_delivery_is_no_alert():
    assert ALERTS.decide(ALERTS.initial, alert(DELIVERED), NOW) == []
