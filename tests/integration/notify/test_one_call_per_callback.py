"""One call per callback, always: the consumer's handler, the ticker and a second replica racing on
the same dispatch place one call; notify killed in any window of a call attempt calls once after its
restart; two couriers send a queued email or SMS once; the provider answers a repeated idempotency
key with the first call (docs/adr/0015)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from contracts import TOPICS, registry
from services.kernel.eventstore import Cause, EventStore
from services.notify.courier import Courier
from services.notify.dialout import dialout_stream
from services.notify.ledger import ledger_stream
from tests.integration.notify.conftest import publish
from tests.integration.notify.story import someone
from tests.integration.notify.test_dial_out import a_phone, dispatched
from tests.integration.notify.test_outcome_and_codes import code_for
from tests.integration.simulators import free_port
from tests.integration.support import ServiceProcess, skip_history, wait_for

RACES = 40


async def calls_received(telephony_url: str) -> list[dict]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{telephony_url}/received")).json()["calls"]


async def test_the_provider_answers_a_repeated_idempotency_key_with_the_first_call_and_rings_once(
    notify, telephony_url
):
    phone, key = a_phone(), f"key-{someone()[0]}"
    form = {"To": phone, "From": "+441632960000", "Twiml": "<Response/>"}
    url = f"{telephony_url}/2010-04-01/Accounts/{notify.config.telephony_account_sid}/Calls.json"
    async with httpx.AsyncClient(auth=(notify.config.telephony_account_sid, "token")) as client:
        first, again = [
            await client.post(url, data=form, headers={"I-Twilio-Idempotency-Token": key}) for _ in range(2)
        ]
        other = await client.post(url, data=form, headers={"Idempotency-Key": f"{key}-other"})

    assert first.status_code == again.status_code == other.status_code == 201
    assert again.json()["sid"] == first.json()["sid"] != other.json()["sid"]
    assert [c["sid"] for c in await calls_received(telephony_url) if c["to"] == phone] == [
        first.json()["sid"],
        other.json()["sid"],
    ]


async def test_the_handler_the_ticker_and_a_second_replica_racing_on_each_dispatch_place_exactly_one_call(
    notify, telephony_url
):
    cases = [(someone()[0], a_phone()) for _ in range(RACES)]
    stop = asyncio.Event()
    ticking = asyncio.create_task(tick_without_pause(notify, stop))
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
        stop.set()
        ticking.cancel()
        ended, _ = await asyncio.wait({ticking}, timeout=30)  # a ticker that hangs fails the test, not the run
        assert ended, "the ticker did not end within 30 s of its stop"

    per_phone = Counter(c["to"] for c in await calls_received(telephony_url))
    assert {phone: per_phone[phone] for _, phone in cases} == {phone: 1 for _, phone in cases}
    for complaint_id, _ in cases:
        events, _ = await notify.store.load(dialout_stream(f"cb-{complaint_id}"))
        assert [type(e).__name__ for e in events] == ["DialOutRequested", "CallPlaced"]


async def test_the_path_that_claims_a_call_first_places_it_without_reading_its_dial_out_back(
    notify, telephony_url, monkeypatch
):
    """Every path records a call attempt under its claim, so the first claim of an attempt proves
    that nobody placed it: only a path that takes over a lapsed claim looks at the stream again."""
    complaint_id, phone = someone()[0], a_phone()
    event = dispatched(complaint_id, phone)
    reads, load = [], notify.store.load

    async def counting(stream_id, *args, **kwargs):
        reads.append(stream_id)
        return await load(stream_id, *args, **kwargs)

    monkeypatch.setattr(notify.store, "load", counting)
    await notify.notify.dial(event, Cause.of_request(f"dispatch-{complaint_id}", "dial"))

    assert reads == [], "requested, claimed, placed and recorded on the state the process holds"
    assert [c["to"] for c in await calls_received(telephony_url)].count(phone) == 1


async def tick_without_pause(notify, stop: asyncio.Event) -> None:
    """The ticker, as eager as it can be: every round races whatever the handler is doing. It ends
    at ``stop`` too, not only when cancelled: Python 3.11's ``asyncio.wait_for`` can swallow a
    cancellation that comes as the awaited call completes, and this loop then ran for ever (the
    test hung in CI once, and 1 run in 4 on a loaded machine)."""
    while not stop.is_set():
        await notify.notify.tick()
        await asyncio.sleep(0)


async def quiescent(notify, event_ids: list[str], callbacks: list[str]) -> bool:
    return await quiescent_store(notify.store, event_ids, callbacks)


async def quiescent_store(store: EventStore, event_ids: list[str], callbacks: list[str]) -> bool:
    """Nothing left to do: every dispatch consumed, every commit followed, every call placed and
    off the agenda."""
    db = store.db
    consumed = await db["inbox"].count_documents({"_id": {"$in": event_ids}})
    waiting = await db["agenda"].count_documents({"_id": {"$in": [f"dialout:{c}" for c in callbacks]}})
    placed = 0
    for callback in callbacks:
        events, _ = await store.load(dialout_stream(callback))
        placed += any(type(e).__name__ == "CallPlaced" for e in events)
    return (
        consumed == len(event_ids)
        and waiting == 0
        and placed == len(callbacks)
        and await store.pending.count_documents({}) == 0
    )


@pytest.mark.parametrize(
    "window, calls_before_the_kill",
    [
        ("claim", 0),  # DialOutRequested recorded, the attempt not claimed yet
        ("provider", 0),  # claimed, the provider not asked yet
        ("record", 1),  # the provider placed the call, CallPlaced not recorded yet
        ("recorded", 1),  # CallPlaced recorded, the message neither in the inbox nor committed
    ],
)
async def test_notify_killed_in_any_window_of_a_call_attempt_calls_exactly_once_after_its_restart(
    settings, db, mailbox, telephony_url, tmp_path, processes, window, calls_before_the_kill
):
    config = notify_environment(settings, mailbox, telephony_url)
    for topic in (TOPICS["intake"], TOPICS["routing"]):  # this test's dispatch only, not the topics' history
        await asyncio.to_thread(
            skip_history,
            settings.kafka_bootstrap_servers,
            settings.consumer_group_prefix + config["SERVICE_NAME"],
            topic,
        )
    complaint_id, phone = someone()[0], a_phone()
    first = ServiceProcess(
        "notify",
        settings,
        TOPICS["routing"],
        tmp_path,
        **config,
        TEST_HANG_AT=window,
        TEST_HANG_FOR=f"cb-{complaint_id}",
    )
    processes.append(first)
    [event_id] = publish(settings.kafka_bootstrap_servers, "routing", dispatched(complaint_id, phone))
    await first.hung()
    first.kill()
    assert len(await calls_to(telephony_url, phone)) == calls_before_the_kill, "killed where the test meant"

    restarted = time.monotonic()
    second = ServiceProcess("notify", settings, TOPICS["routing"], tmp_path, **config)
    processes.append(second)
    store = EventStore(db, "/services/notify", registry)
    # The killed member's session (6 s) runs out before the message is redelivered; a claim left
    # behind is taken over after CLAIM_EXPIRY_S by the ticker.
    await wait_for(lambda: quiescent_store(store, [event_id], [f"cb-{complaint_id}"]), timeout=90)
    print(f"\n{window}: nothing left to do {time.monotonic() - restarted:.1f} s after the restart")
    assert second.stop() == 0

    assert len(await calls_to(telephony_url, phone)) == 1
    events, _ = await store.load(dialout_stream(f"cb-{complaint_id}"))
    assert [type(e).__name__ for e in events] == ["DialOutRequested", "CallPlaced"]


def notify_environment(settings, mailbox, telephony_url) -> dict[str, str]:
    return {
        "SERVICE_NAME": f"notify-{settings.service_name}",
        "HTTP_PORT": str(free_port()),
        "SMTP_PORT": str(mailbox.smtp_port),
        "TELEPHONY_URL": telephony_url,
        "ORDER_SYSTEM_URL": "http://127.0.0.1:9",
        "TICK_INTERVAL_S": "0.5",
        "CLAIM_EXPIRY_S": "3",
        "LOG_LEVEL": "WARNING",
    }


async def calls_to(telephony_url: str, phone: str) -> list[dict]:
    return [c for c in await calls_received(telephony_url) if c["to"] == phone]


async def test_two_couriers_racing_on_the_same_queued_emails_and_sms_send_each_exactly_once(
    notify, mailbox, telephony_url
):
    # Two replicas' couriers, as when a round outlasts the courier lease and the next holder starts.
    await notify.app.state.courier_loop.stop()
    first, second = (
        Courier(
            notify.store,
            notify.notify,
            notify.app.state.services.templates,
            notify.app.state.courier.mailer,
            notify.notify.telephony,
            notify.config,
            asyncio.Event(),
        )
        for _ in range(2)
    )
    addresses = [someone()[1] for _ in range(RACES // 4)] + [a_phone() for _ in range(RACES // 4)]
    for address in addresses:
        await notify.notify.send_code(
            code_for(address, "sms" if address.startswith("+") else "email"),
            Cause.of_request(f"code-{address}", "send_code"),
        )
    jobs = await wait_for(lambda: jobs_for(notify, addresses))

    # The second starts a little later each time, so that some of its rounds load a message before
    # the first records it and reach the commit point after.
    await asyncio.gather(
        *(first.deliver(job) for job in jobs), *(later(second.deliver(job), i) for i, job in enumerate(jobs))
    )
    await asyncio.gather(*(courier.deliver_due() for courier in (first, second)))  # what a loser left
    await wait_for(lambda: nothing_owed(notify, addresses))

    sms = Counter(m["to"] for m in (await telephony_received(telephony_url))["messages"])
    emails = Counter(r for m in mailbox.messages_all() for r in m["rcpt_tos"])
    assert {a: (sms if a.startswith("+") else emails)[a] for a in addresses} == {a: 1 for a in addresses}


async def later(delivery, step: int) -> None:
    await asyncio.sleep(step * 0.005)
    await delivery


async def jobs_for(notify, addresses: list[str]) -> list[dict] | None:
    jobs = await notify.store.db["outgoing"].find({"address": {"$in": addresses}}).to_list()
    return jobs if len(jobs) == len(addresses) else None


async def nothing_owed(notify, addresses: list[str]) -> bool:
    """Quiescent: every message recorded as sent, none left on the courier's work list."""
    for address in addresses:
        events, _ = await notify.store.load(ledger_stream(address))
        if not any(type(e).__name__ == "MessageSent" for e in events):
            return False
    return await notify.store.db["outgoing"].count_documents({"address": {"$in": addresses}}) == 0


async def telephony_received(telephony_url: str) -> dict:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{telephony_url}/received")).json()
