"""The telephony adapter's one retry (services/notify/adapters/telephony.py, ADR 0015 and 0035): a
request that got no answer is asked once more with the same idempotency key; an error answer is not."""

from __future__ import annotations

import random

import httpx
import pytest

from services.kernel.outbound import client
from services.notify.adapters.telephony import TelephonyFailed, TwilioStyleTelephony
from tests.unit.test_outbound import scripted


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda low, high: 0.0)


def provider(*answers: httpx.Response | Exception) -> tuple[TwilioStyleTelephony, list[httpx.Request]]:
    transport, seen = scripted(*answers)
    telephony = TwilioStyleTelephony("http://provider", "AC1", "token", "+15550000001")
    telephony._client = client("http://provider", 5.0, auth=("AC1", "token"), transport=transport)
    return telephony, seen


async def test_a_request_that_timed_out_is_asked_again_with_the_same_key_and_its_call_is_kept():
    telephony, seen = provider(httpx.ReadTimeout("lost"), httpx.Response(201, json={"sid": "CA1", "status": "queued"}))

    sid = await telephony.place_call("+447700900123", "client:agt-0042", "call:cb-1:1")

    assert sid == "CA1"
    assert [r.headers["Idempotency-Key"] for r in seen] == ["call:cb-1:1", "call:cb-1:1"]


async def test_two_requests_without_an_answer_fail_the_call_naming_why():
    telephony, seen = provider(httpx.ConnectError("refused"), httpx.ConnectError("refused"))

    with pytest.raises(TelephonyFailed, match="unreachable: ConnectError"):
        await telephony.send_sms("+447700900123", "Your case", "sms:m-1")
    assert len(seen) == 2


async def test_an_error_answer_is_not_asked_again():
    telephony, seen = provider(httpx.Response(500, json={"message": "Internal Server Error"}))

    with pytest.raises(TelephonyFailed, match="answered 500: Internal Server Error"):
        await telephony.place_call("+447700900123", "client:agt-0042", "call:cb-1:1")
    assert len(seen) == 1
