"""One call per callback, always: the consumer's handler, the ticker and a second replica racing on
the same dispatch place one call; the provider answers a repeated idempotency key with the first call."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from services.kernel.eventstore import Cause
from services.notify.dialout import dialout_stream
from tests.integration.notify.conftest import publish
from tests.integration.notify.story import someone
from tests.integration.notify.test_dial_out import a_phone, dispatched
from tests.integration.support import wait_for

RACES = 40


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


async def test_the_handler_the_ticker_and_a_second_replica_racing_on_each_dispatch_place_exactly_one_call(
        notify, telephony_url):
    cases = [(someone()[0], a_phone()) for _ in range(RACES)]
    ticking = asyncio.create_task(tick_without_pause(notify))
    try:
        ids = []
        for complaint_id, phone in cases:
            event = dispatched(complaint_id, phone)
            [event_id] = publish(notify.config.kafka_bootstrap_servers, "routing", event)  # the handler, via Kafka
            ids.append(event_id)
            # A second replica's handler with the same message (a redelivery), racing both.
            await notify.notify.dial(event, Cause.of_request(event_id, "dial"))
        await wait_for(lambda: quiescent(notify, ids, [f"cb-{c}" for c, _ in cases]), timeout=60)
    finally:
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)

    per_phone = Counter(c["to"] for c in await calls_received(telephony_url))
    assert {phone: per_phone[phone] for _, phone in cases} == {phone: 1 for _, phone in cases}
    for complaint_id, _ in cases:
        events, _ = await notify.store.load(dialout_stream(f"cb-{complaint_id}"))
        assert [type(e).__name__ for e in events] == ["DialOutRequested", "CallPlaced"]


async def tick_without_pause(notify) -> None:
    """The ticker, as eager as it can be: every round races whatever the handler is doing."""
    while True:
        await notify.notify.tick()
        await asyncio.sleep(0)


async def quiescent(notify, event_ids: list[str], callbacks: list[str]) -> bool:
    """Nothing left to do: every dispatch consumed, every commit followed, no dial-out on the agenda,
    and every call attempt that was claimed is recorded."""
    db = notify.store.db
    consumed = await db["inbox"].count_documents({"_id": {"$in": event_ids}})
    waiting = await db["agenda"].count_documents({"_id": {"$in": [f"dialout:{c}" for c in callbacks]}})
    placed = 0
    for callback in callbacks:
        events, _ = await notify.store.load(dialout_stream(callback))
        placed += any(type(e).__name__ == "CallPlaced" for e in events)
    return (consumed == len(event_ids) and waiting == 0 and placed == len(callbacks)
            and await notify.store.pending.count_documents({}) == 0)
