"""Kubernetes stops and rolls pods: SIGTERM mid-burst and a rolling restart lose and repeat nothing."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

from contracts.envelope import to_kafka
from services.kernel.eventstore import Cause, EventStore
from tests.integration.story_events import NoteAdded
from tests.integration.support import ServiceProcess, count_at_least, produce_raw, wait_for

GRACE_S = 30  # the Deployments' terminationGracePeriodSeconds


def burst(store: EventStore, unique: str, complaints: int, notes: int) -> list[tuple]:
    now = datetime.now(UTC)
    return [
        to_kafka(
            store.envelope(
                NoteAdded(complaint_id=f"c-{c}", n=n, text=f"note {n} of c-{c}"),
                f"e-{unique}-{c}-{n}",
                Cause.of_request(f"r-{c}-{n}", "file"),
                now,
            )
        )
        for n in range(1, notes + 1)
        for c in range(complaints)
    ]


async def applied_once_each(db, test_registry, complaints: int, notes: int) -> None:
    store = EventStore(db, "/services/test", test_registry)
    for c in range(complaints):
        for n in range(1, notes + 1):
            commits = await store.read_stream(f"counted-c-{c}-{n}")
            assert len(commits) == 1, f"c-{c} note {n} applied {len(commits)} times"
            assert commits[0].events[0].data == {"complaint_id": f"c-{c}", "n": n}


async def test_sigterm_in_the_middle_of_a_burst_exits_0_in_time_and_a_restart_applies_every_event_once(
    settings, topic, db, test_registry, tmp_path, processes, unique
):
    store = EventStore(db, "/services/test", test_registry)
    produce_raw(settings.kafka_bootstrap_servers, topic, burst(store, unique, 100, 10))
    group = f"{unique}-g"
    first = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group)
    processes.append(first)
    await wait_for(lambda: count_at_least(db["inbox"], 150), timeout=120)
    first.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert first.proc.wait(GRACE_S) == 0, "a SIGTERM'd service exits 0"
    assert time.monotonic() - started < GRACE_S
    handled_before = await db["inbox"].count_documents({})
    assert handled_before < 1000, "the stop came mid-burst"

    second = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group)
    processes.append(second)
    await wait_for(lambda: count_at_least(db["inbox"], 1000), timeout=180)
    assert second.stop() == 0
    assert await db["handler_calls"].count_documents({}) == 1000, "no event handled twice: offsets were committed"
    await applied_once_each(db, test_registry, 100, 10)


async def test_a_rolling_restart_of_two_consumers_loses_nothing_and_keeps_each_complaints_order(
    settings, topic, db, test_registry, tmp_path, processes, unique
):
    store = EventStore(db, "/services/test", test_registry)
    group = f"{unique}-g"
    a = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group)
    b = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group)
    processes.extend([a, b])
    messages = burst(store, unique, 60, 10)
    produce_raw(settings.kafka_bootstrap_servers, topic, messages[:200])
    await wait_for(lambda: count_at_least(db["inbox"], 100), timeout=120)
    assert a.stop() == 0  # pod a rolls: stopped while b works and events flow
    produce_raw(settings.kafka_bootstrap_servers, topic, messages[200:400])
    a2 = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group)
    processes.append(a2)
    produce_raw(settings.kafka_bootstrap_servers, topic, messages[400:])
    await wait_for(lambda: count_at_least(db["inbox"], 600), timeout=180)
    assert b.stop() == 0 and a2.stop() == 0
    await applied_once_each(db, test_registry, 60, 10)
    assert await db["handler_calls"].count_documents({}) >= 600  # a repeat is allowed after a rebalance
    per_complaint: dict[str, list[int]] = {}
    async for entry in db["inbox"].find({}).sort("position", 1):
        data = entry["envelope"]["data"]
        per_complaint.setdefault(data["complaint_id"], []).append(data["n"])
    assert all(ns == list(range(1, 11)) for ns in per_complaint.values()), "each complaint's notes in order"
