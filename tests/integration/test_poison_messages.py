"""Poison messages go to `<topic>.dlq` with the reason, and the partition keeps flowing."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.envelope import to_kafka
from services.kernel.deadletters import list_letters, redrive
from services.kernel.eventstore import Cause
from services.kernel.runtime import Runtime
from tests.integration.story_events import NoteAdded
from tests.integration.support import produce_raw, wait_for


async def test_malformed_and_unknown_messages_are_dead_lettered_and_later_ones_still_handled(
        settings, topic, test_registry, db):
    runtime = Runtime.create(settings, test_registry, topic)
    handled: list[int] = []

    async def note(event: NoteAdded, envelope) -> None:
        handled.append(event.n)

    runtime.consumer.subscribe(topic, f"{topic}-g", {NoteAdded: note})
    await runtime.start()
    try:
        good = runtime.store.envelope(NoteAdded(complaint_id="c-1", n=1), "e-1",
                                      Cause.of_request("r", "t"), datetime.now(UTC))
        key, value, headers = to_kafka(good)
        unknown = [(k, v if k != "ce_type" else b"complaints.test.Nobody.v1") for k, v in headers]
        wrong_payload = [(k, v if k != "ce_id" else b"e-2") for k, v in headers]
        later = [(k, v if k != "ce_id" else b"e-3") for k, v in headers]
        produce_raw(settings.kafka_bootstrap_servers, topic, [
            (key, b"{not json", headers),                      # malformed payload
            (key, value, unknown),                              # unknown ce_type
            (key, b'{"complaint_id": "c-1", "n": "x"}', wrong_payload),  # fails the contract
            (key, b'{"complaint_id": "c-1", "n": 7}', later),  # fine: must still be handled
        ])
        await wait_for(lambda: len(handled) == 1)
        assert handled == [7]
        letters = await wait_for(lambda: (
            (ls := list_letters(settings, f"{topic}.dlq")) and len(ls) == 3 and ls))
        reasons = sorted((letter.header("dlq_error_class"), letter.header("dlq_reason")) for letter in letters)
        (malformed, not_json), (invalid, not_matching), (unknown, unknown_reason) = reasons
        assert malformed == invalid == "MalformedMessage" and unknown == "UnknownEventType"
        assert {"payload is not JSON" in not_json or "payload is not JSON" in not_matching,
                "does not match" in not_json or "does not match" in not_matching} == {True}
        assert "complaints.test.Nobody.v1" in unknown_reason
        assert all(letter.header("dlq_original_topic") == topic for letter in letters)
        assert {letter.value for letter in letters} >= {b"{not json"}
    finally:
        await runtime.stop()


async def test_redriving_sends_each_dead_letter_back_to_its_topic_once(settings, topic):
    produce_raw(settings.kafka_bootstrap_servers, f"{topic}.dlq", [
        (b"c-1", b"{}", [("ce_id", b"x"), ("dlq_reason", b"store down"), ("dlq_original_topic", topic.encode())]),
    ])
    assert await redrive(settings, f"{topic}.dlq") == 1
    assert await redrive(settings, f"{topic}.dlq") == 0
    back = list_letters(settings, topic)  # read the original topic the same way
    assert [(b.value, b.header("ce_id"), b.header("dlq_reason")) for b in back] == [(b"{}", "x", None)]

