"""The ``complaints`` command against the real store and broker: inspect, rebuild, dead letters."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner, Result

from services.kernel.cli import app
from services.kernel.deadletters import list_letters
from services.kernel.eventstore import Cause, EventStore
from services.kernel.kafka import ensure_topics
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from tests.integration.notes_projection import NotesPerComplaint
from tests.integration.story_events import NoteAdded
from tests.integration.support import produce_raw, wait_for

PROJECTION_OPTIONS = [
    "--projections",
    "tests.integration.notes_projection:PROJECTIONS",
    "--registry",
    "tests.integration.story_events:registry",
]


def complaints(settings: KernelSettings, *args: str, input: str | None = None) -> Result:
    """Run the command on the test's own database and broker, as an operator would."""
    options = [
        "--service",
        settings.service_name,
        "--database",
        settings.database_name,
        "--mongodb-url",
        settings.mongodb_url,
        "--kafka",
        settings.kafka_bootstrap_servers,
    ]
    return CliRunner().invoke(app, [*options, *args], input=input, env={"COLUMNS": "200"})


def succeeded(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


async def test_inspect_shows_a_complaints_commits_in_order_with_the_events_it_consumed(settings, db, test_registry):
    store = EventStore(db, "/services/test", test_registry)
    await store.setup()
    for n in (1, 2):
        await store.append(
            "c-1",
            n - 1,
            [NoteAdded(complaint_id="c-1", n=n, text=f"note {n}")],
            Cause.of_request(f"req-{n}", "add_note"),
        )
    await store.append("c-2", 0, [NoteAdded(complaint_id="c-2", n=1)], Cause.of_request("req-other", "add_note"))
    now = datetime.now(UTC)
    consumed = store.envelope(
        NoteAdded(complaint_id="c-1", n=9), "from-elsewhere", Cause.of_request("req-9", "other"), now
    )
    await db["inbox"].insert_one(
        {
            "_id": consumed.id,
            "envelope": consumed.model_dump(mode="json"),
            "position": store.next_position(),
            "topic": "complaints.other.v1",
            "partition": 0,
            "offset": 41,
            "received_at": now,
            "handled": True,
        }
    )
    await store.append("c-1", 2, [NoteAdded(complaint_id="c-1", n=3)], Cause.of_request("req-3", "add_note"))

    lines = succeeded(await asyncio.to_thread(complaints, settings, "inspect", "c-1", "--json")).stdout
    entries = [json.loads(line) for line in lines.splitlines()]
    assert [(e["kind"], e.get("version")) for e in entries] == [
        ("commit", 1),
        ("commit", 2),
        ("consumed", None),
        ("commit", 3),
    ]
    assert [e["position"] for e in entries] == sorted(e["position"] for e in entries)
    assert (entries[0]["handler"], entries[0]["cause"], entries[0]["published"]) == ("add_note", "req-1", False)
    assert entries[0]["events"][0]["data"] == {"complaint_id": "c-1", "n": 1, "text": "note 1"}
    assert (entries[2]["topic"], entries[2]["offset"], entries[2]["events"][0]["id"]) == (
        "complaints.other.v1",
        41,
        "from-elsewhere",
    )

    shown = succeeded(await asyncio.to_thread(complaints, settings, "inspect", "c-1")).stdout
    assert "3 commit(s), 1 consumed event(s)" in shown and "consumed  position" in shown
    assert "complaints.test.NoteAdded.v1" in shown and "handler add_note  cause req-1" in shown
    order = [shown.index(f'"n": {n}') for n in (1, 2, 9, 3)]
    assert order == sorted(order), shown


async def test_inspect_of_an_unknown_complaint_says_so_and_exits_1(settings, db):
    result = await asyncio.to_thread(complaints, settings, "inspect", "c-nobody")
    assert result.exit_code == 1
    assert (
        f"no commits or consumed events for complaint 'c-nobody' in database '{settings.database_name}'"
        in result.stderr
    )
    assert "Traceback" not in result.output


async def test_a_projection_dropped_and_rebuilt_from_the_store_equals_the_live_one(settings, topic, test_registry, db):
    runtime = Runtime.create(settings, test_registry, topic, [NotesPerComplaint])

    async def received(event: NoteAdded, envelope) -> None:
        """Consuming our own notes back from Kafka puts them in the inbox too."""

    runtime.consumer.subscribe(topic, f"{topic}-notes", {NoteAdded: received})
    await runtime.start()
    try:

        async def add_notes(complaint_id: str) -> None:
            for n in range(1, 11):
                await runtime.store.append(
                    complaint_id,
                    n - 1,
                    [NoteAdded(complaint_id=complaint_id, n=n)],
                    Cause.of_request(f"{complaint_id}-note-{n}", "add_note"),
                )

        complaint_ids = [f"c-{i:02}" for i in range(20)]
        await asyncio.gather(*(add_notes(c) for c in complaint_ids))

        async def all_consumed_and_projected() -> bool:
            consumed = await db["inbox"].count_documents({})
            return consumed == 200 and await runtime.store.pending.count_documents({}) == 0

        await wait_for(all_consumed_and_projected, timeout=120)
        live = await snapshot(db)
    finally:
        await runtime.stop()
    assert {d["_id"]: (d["count"], d["notes"]) for d in live} == {c: (10, list(range(1, 11))) for c in complaint_ids}

    # Spoil the read model: only a real drop and replay can make it equal the live one again.
    await db[NotesPerComplaint.name].insert_one({"_id": "c-stale", "count": 99, "notes": [], "event_ids": []})
    await db[NotesPerComplaint.name].update_one({"_id": "c-00"}, {"$set": {"count": 0, "notes": []}})

    result = succeeded(
        await asyncio.to_thread(complaints, settings, "rebuild", NotesPerComplaint.name, *PROJECTION_OPTIONS)
    )

    assert await snapshot(db) == live
    assert "rebuilt notes_per_complaint: 400 log entries applied" in result.stdout  # 200 commits + 200 consumed
    assert "most_notes" in await db[NotesPerComplaint.name].index_information()


async def test_rebuilding_an_unknown_projection_lists_the_known_ones_and_exits_2(settings, db):
    result = await asyncio.to_thread(complaints, settings, "rebuild", "nope", *PROJECTION_OPTIONS)
    assert result.exit_code == 2
    assert "unknown projection 'nope'; known projections: notes_per_complaint" in result.stderr


def test_dlq_list_shows_a_letters_reason_and_redrive_moves_it_back_once(settings, topic):
    ensure_topics(settings, [topic], partitions=1)
    produce_raw(
        settings.kafka_bootstrap_servers,
        f"{topic}.dlq",
        [
            (
                b"c-7",
                b'{"complaint_id": "c-7", "n": "x"}',
                [
                    ("ce_id", b"e-7"),
                    ("ce_type", b"complaints.test.NoteAdded.v1"),
                    ("dlq_reason", b"payload does not match complaints.test.NoteAdded.v1\n  n: not an integer"),
                    ("dlq_error_class", b"MalformedMessage"),
                    ("dlq_original_topic", topic.encode()),
                    ("dlq_failed_at", b"2026-11-29T14:03:07+00:00"),
                ],
            )
        ],
    )

    table = succeeded(complaints(settings, "dlq", "list", topic)).stdout
    assert "1 dead letter(s) on " + f"{topic}.dlq" in table
    assert "payload does not match complaints.test.NoteAdded.v1" in table and "not an integer" not in table
    assert "MalformedMessage" in table and "c-7" in table and "2026-11-29T14:03:07+00:00" in table
    as_json = succeeded(complaints(settings, "dlq", "list", f"{topic}.dlq", "--json")).stdout
    rows = [json.loads(line) for line in as_json.splitlines()]
    assert [(r["key"], r["ce_type"], r["dlq_reason"]) for r in rows] == [
        ("c-7", "complaints.test.NoteAdded.v1", "payload does not match complaints.test.NoteAdded.v1")
    ]

    declined = complaints(settings, "dlq", "redrive", topic, input="n\n")
    assert declined.exit_code == 1 and list_letters(settings, topic) == []

    assert "re-drove 1 letter(s)" in succeeded(complaints(settings, "dlq", "redrive", topic, "--yes")).stdout
    assert "re-drove 0 letter(s)" in succeeded(complaints(settings, "dlq", "redrive", topic, "--yes")).stdout
    back = list_letters(settings, topic)
    assert [(b.key, b.header("ce_id"), b.header("dlq_reason")) for b in back] == [(b"c-7", "e-7", None)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--mongodb-url", "mongodb://127.0.0.1:1/", "inspect", "c-1"],
            "error: cannot reach the document store (MONGODB_URL) at mongodb://127.0.0.1:1/: ",
        ),
        (
            ["--kafka", "127.0.0.1:1", "dlq", "list", "some.topic"],
            "error: cannot reach the Kafka broker (KAFKA_BOOTSTRAP_SERVERS) at 127.0.0.1:1: ",
        ),
    ],
)
def test_an_unreachable_dependency_is_named_in_one_line_with_exit_code_2(args, expected):
    result = CliRunner().invoke(app, args, env={"STARTUP_TIMEOUT_S": "0.5"})
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(expected), line
    assert "Traceback" not in result.output


async def snapshot(db) -> list[dict]:
    """The read model as comparable data: documents by id, their lists in order."""
    docs = await db[NotesPerComplaint.name].find({}).sort("_id", 1).to_list()
    return [{**d, "notes": sorted(d["notes"]), "event_ids": sorted(d["event_ids"])} for d in docs]
