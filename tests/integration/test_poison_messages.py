"""Poison messages go to `<topic>.dlq` with the reason, and the partition keeps flowing."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from pymongo.errors import OperationFailure

from contracts.envelope import to_kafka
from services.kernel.deadletters import list_letters, redrive
from services.kernel.eventstore import Cause
from services.kernel.runtime import Runtime
from tests.integration.story_events import NoteAdded
from tests.integration.support import BROKER_MAX_MESSAGE_BYTES, produce_raw, wait_for


async def test_malformed_and_unknown_messages_are_dead_lettered_and_later_ones_still_handled(
    settings, topic, test_registry, db
):
    runtime = Runtime.create(settings, test_registry, topic)
    handled: list[int] = []

    async def note(event: NoteAdded, envelope) -> None:
        handled.append(event.n)

    runtime.consumer.subscribe(topic, f"{topic}-g", {NoteAdded: note})
    await runtime.start()
    try:
        good = runtime.store.envelope(
            NoteAdded(complaint_id="c-1", n=1), "e-1", Cause.of_request("r", "t"), datetime.now(UTC)
        )
        key, value, headers = to_kafka(good)
        unknown = [(k, v if k != "ce_type" else b"complaints.test.Nobody.v1") for k, v in headers]
        wrong_payload = [(k, v if k != "ce_id" else b"e-2") for k, v in headers]
        later = [(k, v if k != "ce_id" else b"e-3") for k, v in headers]
        produce_raw(
            settings.kafka_bootstrap_servers,
            topic,
            [
                (key, b"{not json", headers),  # malformed payload
                (key, value, unknown),  # unknown ce_type
                (key, b'{"complaint_id": "c-1", "n": "x"}', wrong_payload),  # fails the contract
                (key, b'{"complaint_id": "c-1", "n": 7}', later),  # fine: must still be handled
            ],
        )
        await wait_for(lambda: len(handled) == 1)
        assert handled == [7]
        letters = await wait_for(lambda: (ls := list_letters(settings, f"{topic}.dlq")) and len(ls) == 3 and ls)
        reasons = sorted((letter.header("dlq_error_class"), letter.header("dlq_reason")) for letter in letters)
        (malformed, not_json), (invalid, not_matching), (unknown, unknown_reason) = reasons
        assert malformed == invalid == "MalformedMessage" and unknown == "UnknownEventType"
        assert {
            "payload is not JSON" in not_json or "payload is not JSON" in not_matching,
            "does not match" in not_json or "does not match" in not_matching,
        } == {True}
        assert "complaints.test.Nobody.v1" in unknown_reason
        assert all(letter.header("dlq_original_topic") == topic for letter in letters)
        assert {letter.value for letter in letters} >= {b"{not json"}
    finally:
        await runtime.stop()


async def test_redriving_sends_each_dead_letter_back_to_its_topic_once(settings, topic):
    produce_raw(
        settings.kafka_bootstrap_servers,
        f"{topic}.dlq",
        [
            (b"c-1", b"{}", [("ce_id", b"x"), ("dlq_reason", b"store down"), ("dlq_original_topic", topic.encode())]),
        ],
    )
    assert await redrive(settings, f"{topic}.dlq") == 1
    assert await redrive(settings, f"{topic}.dlq") == 0
    back = list_letters(settings, topic)  # read the original topic the same way
    assert [(b.value, b.header("ce_id"), b.header("dlq_reason")) for b in back] == [(b"{}", "x", None)]


def note(runtime: Runtime, n: int, event_id: str, text: str = "") -> tuple[bytes, bytes, list]:
    """A well-formed NoteAdded message, as it travels."""
    return to_kafka(
        runtime.store.envelope(
            NoteAdded(complaint_id="c-1", n=n, text=text), event_id, Cause.of_request("r", "t"), datetime.now(UTC)
        )
    )


async def test_a_json_payload_nested_100000_deep_is_dead_lettered_and_the_partition_moves_on(
    settings, topic, test_registry, db
):
    runtime = Runtime.create(settings, test_registry, topic)
    handled: list[int] = []

    async def handle(event: NoteAdded, envelope) -> None:
        handled.append(event.n)

    runtime.consumer.subscribe(topic, f"{topic}-g", {NoteAdded: handle})
    await runtime.start()
    try:
        key, _, headers = note(runtime, 1, "deep")
        produce_raw(
            settings.kafka_bootstrap_servers,
            topic,
            [(key, b"[" * 100_000 + b"]" * 100_000, headers), note(runtime, 2, "after-deep")],
        )
        await wait_for(lambda: handled == [2], timeout=20)
        [letter] = await wait_for(lambda: list_letters(settings, f"{topic}.dlq"))
        assert letter.header("dlq_error_class") == "MalformedMessage"
        assert "nested too deeply" in letter.header("dlq_reason")
        assert letter.header("dlq_original_offset") == "0" and len(letter.value) == 200_000
    finally:
        await runtime.stop()


async def test_messages_of_about_a_megabyte_reach_the_dlq_whole_or_cut_and_nothing_comes_again_after_a_restart(
    settings, topic, test_registry, db
):
    group = f"{topic}-g"
    handled: list[int] = []

    async def handle(event: NoteAdded, envelope) -> None:
        if len(event.text) > 100_000:
            raise ValueError("a note this long is no note")
        handled.append(event.n)

    runtime = Runtime.create(settings, test_registry, topic)
    runtime.consumer.subscribe(topic, group, {NoteAdded: handle})
    await runtime.start()
    try:
        # 1,000,100 bytes fits its DLQ whole; the other is as large as the topic takes, so its
        # letter (original headers + reason) cannot be whole: it goes cut, with its size.
        whole = note(runtime, 1, "big-1", "x" * 1_000_100)
        largest = note(runtime, 2, "big-2", "y" * (BROKER_MAX_MESSAGE_BYTES - 2_000))
        produce_raw(settings.kafka_bootstrap_servers, topic, [whole, largest, note(runtime, 3, "after-big")])
        await wait_for(lambda: handled == [3], timeout=30)
        letters = await wait_for(lambda: (ls := list_letters(settings, f"{topic}.dlq")) and len(ls) == 2 and ls)
        by_offset = {letter.header("dlq_original_offset"): letter for letter in letters}
        assert by_offset["0"].value == whole[1] and by_offset["0"].header("dlq_truncated") is None
        cut = by_offset["1"]
        assert cut.header("dlq_truncated") == "true"
        assert cut.header("dlq_original_size") == str(len(largest[1])) and 0 < len(cut.value) < len(largest[1])
        assert cut.value == largest[1][: len(cut.value)]
        assert all("a note this long is no note" in letter.header("dlq_reason") for letter in letters)
    finally:
        await runtime.stop()

    again = Runtime.create(settings, test_registry, topic)
    again.consumer.subscribe(topic, group, {NoteAdded: handle})
    await again.start()
    try:
        produce_raw(settings.kafka_bootstrap_servers, topic, [note(runtime, 4, "after-restart")])
        await wait_for(lambda: handled == [3, 4], timeout=30)
        assert len(list_letters(settings, f"{topic}.dlq")) == 2
    finally:
        await again.stop()


async def test_a_failure_that_repeats_for_one_message_is_not_transient_and_the_partition_moves_on(
    settings, topic, test_registry, db
):
    settings = settings.model_copy(update={"consumer_max_attempts": 3})
    runtime = Runtime.create(settings, test_registry, topic)
    attempts: list[int] = []
    handled: list[int] = []

    async def handle(event: NoteAdded, envelope) -> None:
        if event.n == 1:
            attempts.append(1)  # the store refuses this one, every time (not an outage: it answers)
            raise OperationFailure("document failed validation", code=121)
        handled.append(event.n)

    runtime.consumer.subscribe(topic, f"{topic}-g", {NoteAdded: handle})
    await runtime.start()
    try:
        produce_raw(settings.kafka_bootstrap_servers, topic, [note(runtime, 1, "refused"), note(runtime, 2, "fine")])
        await wait_for(lambda: handled == [2], timeout=30)
        [letter] = await wait_for(lambda: list_letters(settings, f"{topic}.dlq"))
        assert len(attempts) == 3
        assert letter.header("dlq_error_class") == "RepeatedFailure"
        assert "failed 3 times in a row" in letter.header("dlq_reason")
        assert "document failed validation" in letter.header("dlq_reason")
    finally:
        await runtime.stop()


async def test_a_partition_that_does_not_move_with_lag_is_reported_in_readiness_and_one_log_line(
    settings, topic, test_registry, db, caplog
):
    settings = settings.model_copy(update={"partition_stuck_s": 1.0})
    caplog.set_level(logging.INFO, logger="services.kernel.liveness")
    runtime = Runtime.create(settings, test_registry, topic)
    release = asyncio.Event()
    handled: list[int] = []

    async def handle(event: NoteAdded, envelope) -> None:
        await release.wait()  # a handler that does not end (a call that hangs)
        handled.append(event.n)

    runtime.consumer.subscribe(topic, f"{topic}-g", {NoteAdded: handle})
    await runtime.start()
    try:
        produce_raw(settings.kafka_bootstrap_servers, topic, [note(runtime, 1, "hangs")])

        async def stuck():
            ready, checks = await runtime.ready()
            return ready and [s for c in checks["consumers"] for s in c["stuck"]]

        [partition] = await wait_for(stuck, timeout=30)
        assert partition.startswith(f"{topic}[")
        await asyncio.sleep(1.0)  # a second probe must not log it again
        await runtime.ready()
        lines = [r for r in caplog.records if r.getMessage().startswith("partition stuck")]
        assert len(lines) == 1 and lines[0].levelname == "WARNING"
        release.set()
        await wait_for(lambda: handled == [1])
        await wait_for(lambda: any(r.getMessage() == "partition moves again" for r in caplog.records))
    finally:
        release.set()
        await runtime.stop()
