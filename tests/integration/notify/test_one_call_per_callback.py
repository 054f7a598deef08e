"""One call per callback, always: the consumer's handler, the ticker and a second replica racing on
the same dispatch place one call; the provider answers a repeated idempotency key with the first call."""

from __future__ import annotations

import httpx

from tests.integration.notify.story import someone
from tests.integration.notify.test_dial_out import a_phone


async def calls_received(telephony_url: str) -> list[dict]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{telephony_url}/received")).json()["calls"]


async def test_the_provider_answers_a_repeated_idempotency_key_with_the_first_call_and_rings_once(
        notify, telephony_url):
    phone, key = a_phone(), f"key-{someone()[0]}"
    form = {"To": phone, "From": "+441632960000", "Twiml": "<Response/>"}
    url = f"{telephony_url}/2010-04-01/Accounts/{notify.config.telephony_account_sid}/Calls.json"
    async with httpx.AsyncClient(auth=(notify.config.telephony_account_sid, "token")) as client:
        first, again = [await client.post(url, data=form, headers={"I-Twilio-Idempotency-Token": key})
                        for _ in range(2)]
        other = await client.post(url, data=form, headers={"Idempotency-Key": f"{key}-other"})

    assert first.status_code == again.status_code == other.status_code == 201
    assert again.json()["sid"] == first.json()["sid"] != other.json()["sid"]
    assert [c["sid"] for c in await calls_received(telephony_url) if c["to"] == phone] == [
        first.json()["sid"], other.json()["sid"]]
