"""The kernel's rows without the services: hop, append, load, rebuild, each beside its baseline.

Baselines: raw confluent-kafka and raw PyMongo on the same broker and store, and the Python
``eventsourcing`` library on SQLite, all measured in the same process and run. Each row works on
its own fresh database and topic and removes it at the end. Only public kernel APIs are used:
``EventStore`` (append, load), ``Runtime`` (through bench/roundtrip.py) and the ``complaints
rebuild`` command.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import Field
from pymongo import AsyncMongoClient, MongoClient

from bench import roundtrip
from bench.figures import percentile
from contracts.envelope import Envelope, Event, Registry
from services.kernel.eventstore import Cause, EventStore
from services.kernel.projections import DocumentProjection
from services.kernel.settings import KernelSettings

REPO = Path(__file__).resolve().parent.parent
registry = Registry()


@registry.register
class ParcelScanned(Event):
    """A bench event: one scan of a parcel (the stream is the parcel)."""

    type_name = "bench.ParcelScanned"
    complaint_id: str = Field(description="The stream (parcel) scanned.", examples=["parcel-0"])
    n: int = Field(description="Sequence number of the scan.", examples=[0])
    where: str = Field("Depot 7, Leeds", description="Where it was scanned.")


class ScansPerParcel(DocumentProjection):
    """A read model as the services write theirs (``DocumentProjection``): one document per key,
    viewed, changed, saved; the kernel writes what a batch saved in one bulk write."""

    name = "bench_scans"

    async def apply(self, envelope: Envelope, event: Event) -> None:
        view = await self.view(event.complaint_id) or {"_id": event.complaint_id, "scans": 0}
        view["scans"] += 1
        view["last"] = event.where
        await self.save(event.complaint_id, view)


PROJECTIONS = [ScansPerParcel]

Progress = Callable[[int], None]


def _scan(stream: str, n: int) -> list[Event]:
    return [ParcelScanned(complaint_id=stream, n=n)]


async def _gated(jobs, concurrency: int, advance: Progress | None = None) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(job):
        async with gate:
            await job()
        if advance:
            advance(1)

    await asyncio.gather(*(one(job) for job in jobs))


# --- baselines: raw store, eventsourcing on SQLite -------------------------------------------------


async def raw_insert(db, n: int) -> dict[str, Any]:
    """Sequential ``insert_one`` of documents shaped like a commit (ms each, and per second)."""
    docs = [
        {
            "_id": f"raw-{i}@1",
            "stream_id": f"raw-{i}",
            "version": 1,
            "position": time.time_ns(),
            "recorded_at": datetime.now(UTC),
            "events": [ParcelScanned(complaint_id=f"raw-{i}", n=i).model_dump(mode="json")],
        }
        for i in range(n)
    ]
    latencies = []
    started = time.perf_counter()
    for doc in docs:
        t0 = time.perf_counter()
        await db["raw"].insert_one(doc)
        latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "per_s": n / (time.perf_counter() - started),
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
    }


async def raw_drain(db, collection: str) -> dict[str, Any]:
    """One cursor over every document of ``collection``, as fast as the store hands them out."""
    started, count = time.perf_counter(), 0
    async for _doc in db[collection].find({}):
        count += 1
    seconds = time.perf_counter() - started
    return {"docs": count, "seconds": seconds, "per_s": count / seconds if seconds else 0.0}


def eventsourcing_sqlite(n_sequential: int, stream_length: int) -> dict[str, Any]:
    """The ``eventsourcing`` library on SQLite (file, its default settings): ``n_sequential``
    new aggregates of one event saved one after the other (events/s), and the replay of one
    aggregate of ``stream_length`` events (``repository.get``, ms, median of 5)."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Parcel(Aggregate):
        @event("Registered")
        def __init__(self, number: int) -> None:
            self.number, self.scans = number, 0

        @event("Scanned")
        def scan(self, where: str) -> None:
            self.scans += 1

    with tempfile.TemporaryDirectory(prefix="bench-es-") as folder:
        app = Application(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": os.path.join(folder, "events.sqlite")}
        )
        started = time.perf_counter()
        for i in range(n_sequential):
            app.save(Parcel(i))
        sequential = n_sequential / (time.perf_counter() - started)
        long = Parcel(-1)
        for _ in range(stream_length - 1):
            long.scan("Depot 7, Leeds")
        app.save(long)
        replays = []
        for _ in range(5):
            t0 = time.perf_counter()
            replayed = app.repository.get(long.id)
            replays.append((time.perf_counter() - t0) * 1000)
        assert replayed.version == stream_length, replayed.version
        app.close()
    import eventsourcing

    version = getattr(eventsourcing, "__version__", None) or _dist_version("eventsourcing")
    return {"sequential_per_s": sequential, "replay_ms": statistics.median(replays), "version": version}


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# --- the kernel: append, load ----------------------------------------------------------------------


async def appends(store: EventStore, n: int, concurrency: int) -> dict[str, Any]:
    """Appends of one event to a new stream each: one after the other, then ``concurrency`` at once."""
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        await store.append(f"seq-{i}", 0, _scan(f"seq-{i}", i), Cause.of_request(f"seq-{i}", "bench"))
        latencies.append((time.perf_counter() - t0) * 1000)
    sequential = n / (time.perf_counter() - started)

    def job(i: int):
        return lambda: store.append(f"par-{i}", 0, _scan(f"par-{i}", i), Cause.of_request(f"par-{i}", "bench"))

    started = time.perf_counter()
    await _gated([job(i) for i in range(n)], concurrency)
    concurrent = n / (time.perf_counter() - started)
    return {
        "sequential_per_s": sequential,
        "p50_ms": percentile(latencies, 0.5),
        "concurrent_per_s": concurrent,
        "concurrency": concurrency,
    }


async def load_long_stream(store: EventStore, length: int) -> dict[str, Any]:
    """A stream of ``length`` commits of one event each, then ``store.load`` of it (median of 5)."""
    stream = f"long-{uuid.uuid4().hex[:6]}"
    for i in range(length):
        await store.append(stream, i, _scan(stream, i), Cause.of_request(f"{stream}-{i}", "bench"))
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        events, version = await store.load(stream)
        loads.append((time.perf_counter() - t0) * 1000)
    assert len(events) == length and version == length, (len(events), version)
    return {"load_ms": statistics.median(loads), "loads_ms": loads}


# --- rebuild ---------------------------------------------------------------------------------------


async def fill_log(store: EventStore, events: int, concurrency: int = 50, advance: Progress | None = None) -> float:
    """``events`` appends (10 scans per parcel, so streams of 10 commits); returns appends/s."""
    per_parcel = 10

    def job(i: int):
        parcel, n = f"parcel-{i // per_parcel}", i % per_parcel
        return lambda: store.append(parcel, n, _scan(parcel, n), Cause.of_request(f"fill-{i}", "bench"))

    started = time.perf_counter()
    # parcel by parcel: a stream's commits one after another, different parcels at once
    parcels = [[job(p * per_parcel + k) for k in range(per_parcel)] for p in range(events // per_parcel)]

    async def parcel_in_order(jobs):
        for job in jobs:
            await job()
        if advance:
            advance(len(jobs))

    await _gated([lambda jobs=jobs: parcel_in_order(jobs) for jobs in parcels], concurrency)
    return events / (time.perf_counter() - started)


def rebuild_with_cli(mongodb_url: str, database: str, timeout_s: float) -> dict[str, Any]:
    """``complaints rebuild bench_scans`` on ``database`` as an operator runs it (its progress bar
    on this terminal); the figures are the ones it prints."""
    command = [
        sys.executable,
        "-m",
        "services.kernel.cli",
        "--mongodb-url",
        mongodb_url,
        "--database",
        database,
        "--service",
        "bench",
        "rebuild",
        ScansPerParcel.name,
        "--projections",
        "bench.micro:PROJECTIONS",
        "--registry",
        "bench.micro:registry",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:  # stopped (killed): its rate so far, from what the read model holds
        wall = time.perf_counter() - started
        with MongoClient(mongodb_url) as client:
            applied = sum(v.get("scans", 0) for v in client[database][ScansPerParcel.name].find({}, {"scans": 1}))
        return {"entries": applied, "seconds": wall, "wall_s": wall, "per_s": applied / wall, "stopped": True}
    wall = time.perf_counter() - started
    printed = re.search(r"(\d+) log entries applied in ([\d.]+)s", done.stdout or "")
    if done.returncode != 0 or not printed:
        raise RuntimeError(f"complaints rebuild failed (exit {done.returncode}): {done.stdout!r}")
    entries, seconds = int(printed.group(1)), float(printed.group(2))
    return {"entries": entries, "seconds": seconds, "wall_s": wall, "per_s": entries / seconds}


async def rebuild_row(
    mongodb_url: str, events: int, timeout_s: float, progress: Callable[[str, int], Progress]
) -> dict[str, Any]:
    """Fill a fresh log with ``events`` commits, drain it raw, then rebuild a read model from it."""
    database = f"bench_rebuild_{uuid.uuid4().hex[:6]}"
    client = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        store = EventStore(client[database], "/bench", registry)
        await store.setup()
        fill_rate = await fill_log(store, events, advance=progress(f"log of {events:,} events", events))
        drain = await raw_drain(client[database], "commits")
        rebuilt = await asyncio.to_thread(rebuild_with_cli, mongodb_url, database, timeout_s)
        return {"events": events, "fill_per_s": fill_rate, "drain": drain, "rebuild": rebuilt}
    finally:
        await client.drop_database(database)
        await client.close()


# --- the hop, through bench/roundtrip.py -----------------------------------------------------------


async def hop_rows(
    bootstrap: str, mongodb_url: str, n: int, warmup: int, concurrency: int, progress: Callable[[str, int], Progress]
) -> dict[str, Any]:
    """Raw Kafka round trip and the kernel's persisted hop (bench/roundtrip.py's own measurements)."""
    run_id = uuid.uuid4().hex[:8]
    database, raw_topic, kernel_topic = f"bench_{run_id}", f"bench.{run_id}.raw", f"bench.{run_id}.kernel"
    settings = KernelSettings(
        service_name=f"bench-{run_id}",
        kafka_bootstrap_servers=bootstrap,
        mongodb_url=mongodb_url,
        mongodb_database=database,
        outbox_poll_interval_s=60.0,
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(raw_topic, settings.topic_partitions, 1)]).values():
        future.result()
    client = AsyncMongoClient(mongodb_url)
    try:
        raw_bar = progress("raw Kafka round trips", n)
        raw_ms, raw_rate = await asyncio.to_thread(
            roundtrip.measure_raw_kafka, bootstrap, raw_topic, n, warmup, lambda: raw_bar(1)
        )
        seq_bar, con_bar = progress("kernel hops, one at a time", n), progress(f"kernel hops, {concurrency} at once", n)
        kernel = await roundtrip.measure_kernel(
            settings, kernel_topic, n, warmup, concurrency, lambda: seq_bar(1), lambda: con_bar(1)
        )
    finally:
        await client.drop_database(database)
        await client.close()
        for future in admin.delete_topics([raw_topic, kernel_topic, f"{kernel_topic}.dlq"]).values():
            future.exception(timeout=10)
    return {
        "raw": {"p50_ms": percentile(raw_ms, 0.5), "p99_ms": percentile(raw_ms, 0.99), "per_s": raw_rate},
        "kernel": {
            "p50_ms": percentile(kernel.hop_ms, 0.5),
            "p99_ms": percentile(kernel.hop_ms, 0.99),
            "per_s": kernel.throughput,
            "concurrency": concurrency,
            "store_commands_per_hop": sum(kernel.commands_per_hop.values()),
        },
    }


async def store_rows(mongodb_url: str, n: int, concurrency: int, stream_length: int) -> dict[str, Any]:
    """Raw insert, the kernel's appends and the load of a long stream, on one fresh database."""
    database = f"bench_store_{uuid.uuid4().hex[:6]}"
    client = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        db = client[database]
        store = EventStore(db, "/bench", registry)
        await store.setup()
        raw = await raw_insert(db, n)
        appended = await appends(store, n, concurrency)
        loaded = await load_long_stream(store, stream_length)
    finally:
        await client.drop_database(database)
        await client.close()
    return {"raw_insert": raw, "append": appended, "load": loaded}
