"""Processes killed with SIGKILL at the worst moments lose nothing and apply nothing twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.envelope import to_kafka
from services.kernel.deadletters import list_letters
from services.kernel.eventstore import Cause, EventStore
from tests.integration.story_events import NoteAdded
from tests.integration.support import ServiceProcess, consumer_lag, count_at_least, group_state, produce_raw, wait_for

ROOT = Path(__file__).resolve().parents[2]


async def lag_is(settings, group: str, topic: str, lag: int) -> bool:
    """Whether ``group`` has exactly ``lag`` messages of ``topic`` left to commit (as the broker sees it)."""
    return await asyncio.to_thread(consumer_lag, settings.kafka_bootstrap_servers, group, [topic]) == lag


async def test_a_relay_killed_after_publishing_and_before_marking_publishes_again_and_the_consumer_applies_once(
    settings, topic, db, test_registry, tmp_path, processes, unique
):
    store = EventStore(db, "/services/test", test_registry)
    await store.setup()
    await store.append("c-1", 0, [NoteAdded(complaint_id="c-1", n=1)], Cause.of_request("r-1", "file"))

    first = ServiceProcess("relay", settings, topic, tmp_path, TEST_HANG_AT="publish")
    processes.append(first)
    await first.hung()
    first.kill()
    assert await store.pending.count_documents({}) == 1, "the kill came before the pending entry was cleared"

    second = ServiceProcess("relay", settings, topic, tmp_path)
    processes.append(second)
    await wait_for(lambda: _pending_is_empty(store), timeout=60)
    assert second.stop() == 0
    on_topic = list_letters(settings, topic)
    assert len(on_topic) == 2 and len({m.header("ce_id") for m in on_topic}) == 1, "published twice, same id"

    consumer_settings = settings.model_copy(
        update={"service_name": f"{settings.service_name}-c", "mongodb_database": f"{settings.database_name}_c"}
    )
    consumer = ServiceProcess("consumer", consumer_settings, topic, tmp_path, TEST_GROUP=f"{unique}-c")
    processes.append(consumer)
    consumer_db = db.client[consumer_settings.database_name]
    try:
        await wait_for(lambda: count_at_least(consumer_db["inbox"], 1), timeout=60)
        await wait_for(lambda: lag_is(settings, f"{unique}-c", topic, 0), timeout=60)  # the repeat is read too
        assert consumer.stop() == 0
        assert await consumer_db["handler_calls"].count_documents({}) == 1, "the repeat is dropped by id"
        assert await consumer_db["commits"].count_documents({}) == 1
    finally:
        await db.client.drop_database(consumer_settings.database_name)


async def test_a_consumer_killed_mid_handler_gets_the_message_again_applies_it_once_and_resumes_from_its_offset(
    settings, topic, db, test_registry, tmp_path, processes, unique
):
    now = datetime.now(UTC)
    store = EventStore(db, "/services/test", test_registry)
    messages = [
        to_kafka(
            store.envelope(
                NoteAdded(complaint_id="c-7", n=n), f"event-{unique}-{n}", Cause.of_request(f"r{n}", "file"), now
            )
        )
        for n in range(1, 6)
    ]
    produce_raw(settings.kafka_bootstrap_servers, topic, messages)
    group = f"{unique}-g"

    first = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group, TEST_HANG_AT="3")
    processes.append(first)
    await first.hung()
    # the offset commits of messages 1 and 2 reach the broker (3 of the 5 still to commit)
    await wait_for(lambda: lag_is(settings, group, topic, 3))
    first.kill()
    assert await db["inbox"].count_documents({}) == 2

    second = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group)
    processes.append(second)
    try:
        # The group first waits out the killed member's session (6 s) before it rebalances.
        await wait_for(lambda: count_at_least(db["inbox"], 5), timeout=150)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; second consumer alive: {second.proc.poll() is None}; "
            f"inbox: {await db['inbox'].count_documents({})}; "
            f"group: {group_state(settings, group)}"
        ) from None
    assert second.stop() == 0

    calls = [c["n"] async for c in db["handler_calls"].find({})]
    assert sorted(calls) == [1, 2, 3, 3, 4, 5], "only the message in flight ran again"
    for n in range(1, 6):
        commits = await EventStore(db, "/services/test", test_registry).read_stream(f"counted-c-7-{n}")
        assert len(commits) == 1, f"note {n} applied {len(commits)} times"


async def test_a_partitions_next_owner_drops_what_its_last_owner_handled_or_dead_lettered_and_nothing_else(
    settings, topic, db, test_registry, tmp_path, processes, unique
):
    """The inbox is asked only until a partition's first message not dealt with before: past a
    dead letter too, which leaves a mark where a handled message leaves its inbox record."""
    now = datetime.now(UTC)
    store = EventStore(db, "/services/test", test_registry)

    def notes(*ns: int) -> list:
        return [
            to_kafka(
                store.envelope(
                    NoteAdded(complaint_id="c-8", n=n), f"event-{unique}-{n}", Cause.of_request(f"r{n}", "file"), now
                )
            )
            for n in ns
        ]

    group = f"{unique}-g"
    # Its first commit goes at once, the next not before 5 s (the longest interval allowed): the
    # notes after note 0 are handled, and the process killed, well within them.
    first = ServiceProcess(
        "consumer",
        settings,
        topic,
        tmp_path,
        TEST_GROUP=group,
        TEST_HANG_AT="4",
        TEST_REFUSE="2",
        KAFKA_COMMIT_INTERVAL_S="5",
    )
    processes.append(first)
    produce_raw(settings.kafka_bootstrap_servers, topic, notes(0))
    await wait_for(lambda: lag_is(settings, group, topic, 0), timeout=60)
    produce_raw(settings.kafka_bootstrap_servers, topic, notes(1, 2, 3, 4, 5))  # note 2 is refused: dead-lettered
    await first.hung()
    first.kill()
    assert await db["inbox"].count_documents({}) == 3, "notes 0, 1 and 3 handled"
    assert await lag_is(settings, group, topic, 5), "nothing after note 0 committed"

    second = ServiceProcess("consumer", settings, topic, tmp_path, TEST_GROUP=group, TEST_REFUSE="2")
    processes.append(second)
    await wait_for(lambda: count_at_least(db["inbox"], 5), timeout=150)
    await wait_for(lambda: lag_is(settings, group, topic, 0), timeout=60)
    assert second.stop() == 0

    calls = sorted([c["n"] async for c in db["handler_calls"].find({})])
    assert calls == [0, 1, 3, 4, 4, 5], "notes 1 and 3 not again (handled), 4 again (in flight at the kill)"
    letters = [m for m in list_letters(settings, f"{topic}.dlq") if m.header("ce_id") == f"event-{unique}-2"]
    assert len(letters) == 1, "dead-lettered once: its mark tells the next owner"


async def _pending_is_empty(store) -> bool:
    return await store.pending.count_documents({}) == 0


@pytest.mark.parametrize(
    "missing, env, named",
    [
        ("store", {"MONGODB_URL": "mongodb://127.0.0.1:1/"}, "document store (MONGODB_URL) at mongodb://127.0.0.1:1/"),
        ("broker", {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "Kafka broker (KAFKA_BOOTSTRAP_SERVERS) at 127.0.0.1:1"),
    ],
)
def test_a_service_that_cannot_reach_its_broker_or_store_says_which_and_where_and_exits_2(
    settings, topic, tmp_path, missing, env, named
):
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEST_TOPIC": topic,
        "TEST_MARKER": str(tmp_path / "m"),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URL": settings.mongodb_url,
        "STARTUP_TIMEOUT_S": "2",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.processes.crashable", "relay"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    last_line = done.stderr.strip().splitlines()[-1]
    assert named in last_line, done.stderr
    assert "Traceback" not in done.stderr
