"""Round-trip latency and throughput: raw confluent-kafka, the kernel's persisted hop, and the store alone.

All three run in one process, one after the other, against the same broker and store, so the table
compares like with like. See bench/README.md for what each row measures.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import confluent_kafka
import typer
import uvloop
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import Field
from pymongo import ASCENDING, AsyncMongoClient, monitoring
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.envelope import Envelope, Event, Registry, to_kafka
from services.kernel.eventstore import Cause, EventStore, stream_key
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.kernel.storecount import CommandCounter

registry = Registry()


@registry.register
class PingSent(Event):
    """A ping the bench appended; its topic's consumer answers it."""

    type_name = "bench.PingSent"
    complaint_id: str = Field(description="Id of the ping (the Kafka key).", examples=["ping-0"])
    n: int = Field(description="Sequence number of the ping in the run.", examples=[0])


@registry.register
class PingAnswered(Event):
    """The consumer's reaction to a ping (private: it stays in the log, like most reactions)."""

    type_name = "bench.PingAnswered"
    public = False
    complaint_id: str = Field(description="Id of the ping answered.", examples=["ping-0"])
    n: int = Field(description="Sequence number of the ping answered.", examples=[0])


TIMEOUT_S = 30.0


# --- figures ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 500 samples is the 495th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Row:
    name: str
    latencies_ms: list[float]
    throughput: float | None = None  # messages (or operations) per second
    note: str = ""


COMMANDS = CommandCounter()  # services/kernel/storecount.py
monitoring.register(COMMANDS)  # before any client is created: listeners are read at creation


# --- 1. raw confluent-kafka ------------------------------------------------------------------------


def sample_message(key: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A message shaped like the kernel's (CloudEvents headers, JSON value), for a fair baseline."""
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=PingSent.ce_type(),
        source="/bench",
        subject=key,
        time=datetime.now(UTC),
        correlationid=key,
        causationid=key,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        data=PingSent(complaint_id=key, n=0).model_dump(mode="json"),
    )
    return to_kafka(envelope)


def _next_message(consumer: KafkaConsumer):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            return msg
    raise RuntimeError(f"raw consumer received nothing within {TIMEOUT_S}s")


def measure_raw_kafka(
    bootstrap: str, topic: str, n: int, warmup: int, advance: Callable[[], None]
) -> tuple[list[float], float]:
    """Sequential produce → consume latencies (ms), then the throughput of n back-to-back messages."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 0})
    consumer = KafkaConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-raw",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10,
        }
    )
    assigned: list = []
    consumer.subscribe([topic], on_assign=lambda _c, parts: assigned.extend(parts))
    deadline = time.monotonic() + TIMEOUT_S
    while not assigned and time.monotonic() < deadline:
        consumer.poll(0.1)
    try:
        latencies = []
        for i in range(warmup + n):
            key, value, headers = sample_message(f"raw-{i}")
            t0 = time.perf_counter()
            producer.produce(topic, key=key, value=value, headers=headers)
            producer.poll(0)
            msg = _next_message(consumer)
            elapsed = time.perf_counter() - t0
            if msg.key() != key:
                raise RuntimeError(f"raw consumer got {msg.key()!r}, expected {key!r}")
            if i >= warmup:
                latencies.append(elapsed * 1000)
                advance()
        messages = [sample_message(f"burst-{i}") for i in range(n)]
        t0 = time.perf_counter()
        for key, value, headers in messages:
            while True:
                try:
                    producer.produce(topic, key=key, value=value, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
        received = 0
        deadline = time.monotonic() + TIMEOUT_S
        while received < n and time.monotonic() < deadline:
            # consume() returns as soon as it has as many as asked for: ask for what is missing
            received += sum(1 for m in consumer.consume(min(500, n - received), 0.5) if not m.error())
        elapsed = time.perf_counter() - t0
        if received < n:
            raise RuntimeError(f"raw burst: {received} of {n} messages arrived within {TIMEOUT_S}s")
        return latencies, n / elapsed
    finally:
        producer.flush(10)
        consumer.close()


# --- 2. the kernel's persisted hop -----------------------------------------------------------------


@dataclass
class Hop:
    """Timestamps (perf_counter) of one ping on its way through the kernel."""

    started: float = 0.0
    appended: float = 0.0  # store.append returned
    round: float = 0.0  # the log follower's round that published it began
    produced: float = 0.0  # the relay handed it to the broker's publish
    received: float = 0.0  # the kernel consumer began with it (decoded, about to check the inbox)
    entered: float = 0.0  # the handler began (inbox checked)
    answered: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    recorded: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class HopProbe:
    """Per-ping timestamps, fed by the handler and by thin wrappers around the follower, the
    broker's publish and the inbox."""

    def __init__(self) -> None:
        self.hops: dict[int, Hop] = {}
        self.by_event_id: dict[str, Hop] = {}
        self.round_started = 0.0
        self.untimed = False

    def open(self, n: int) -> Hop:
        self.hops[n] = Hop()
        return self.hops[n]

    def instrument(self, runtime: Runtime) -> None:
        # Timestamps only: each wrapper calls the kernel's own method and changes nothing it does.
        # The relay calls runtime.broker.publish, the follower self.follow_once and the consumer
        # inbox.seen / inbox.record: attributes set on these instances are what they call.
        broker, inbox, follower = runtime.broker, runtime.inbox, runtime.follower
        if not all(
            hasattr(o, a)
            for o, a in ((broker, "publish"), (inbox, "seen"), (inbox, "record"), (follower, "follow_once"))
        ):
            # A kernel built otherwise: the hop is still timed end to end (the handler's
            # timestamps), only the stage-by-stage table is left empty. The inbox record is
            # then taken as done when the handler's append is.
            self.untimed = True
            return
        publish, seen, record, follow_once = broker.publish, inbox.seen, inbox.record, follower.follow_once

        async def timed_follow_once():
            self.round_started = time.perf_counter()
            return await follow_once()

        def timed_publish(message, topic, *, key=None, headers=None, **options):
            hop = self.hops.get(_ping_number(key))
            if hop is not None and not hop.produced:
                hop.produced = time.perf_counter()
                hop.round = self.round_started
                self.by_event_id[headers["ce_id"]] = hop
            return publish(message, topic, key=key, headers=headers, **options)

        async def timed_seen(event_id):
            hop = self.by_event_id.get(event_id)
            if hop is not None and not hop.received:
                hop.received = time.perf_counter()
            return await seen(event_id)

        async def timed_record(envelope, msg, handled):
            await record(envelope, msg, handled)
            hop = self.hops.get(_ping_number(envelope.subject.encode()))
            if hop is not None and not hop.recorded.done():
                hop.recorded.set_result(time.perf_counter())

        broker.publish, inbox.seen, inbox.record = timed_publish, timed_seen, timed_record
        follower.follow_once = timed_follow_once


def _ping_number(key: bytes | None) -> int:
    try:
        return int((key or b"").rsplit(b"-", 1)[-1])
    except ValueError:
        return -1


@dataclass
class KernelFigures:
    hop_ms: list[float]
    full_ms: list[float]
    stages_ms: dict[str, list[float]]
    commands_per_hop: dict[str, float]
    throughput: float


async def measure_kernel(
    settings: KernelSettings,
    topic: str,
    n: int,
    warmup: int,
    concurrency: int,
    advance_latency: Callable[[], None],
    advance_throughput: Callable[[], None],
) -> KernelFigures:
    runtime = Runtime.create(settings, registry, topic)
    probe = HopProbe()

    async def answer(event: PingSent, envelope: Envelope) -> None:
        probe.hops[event.n].entered = time.perf_counter()
        await runtime.store.append(
            f"answer-{event.n}",
            0,
            [PingAnswered(complaint_id=event.complaint_id, n=event.n)],
            Cause.of_event(envelope, "answer"),
        )
        hop = probe.hops[event.n]
        if not hop.answered.done():
            hop.answered.set_result(time.perf_counter())
        if probe.untimed and not hop.recorded.done():
            hop.recorded.set_result(hop.answered.result())

    async def ping(i: int) -> None:
        await runtime.store.append(
            f"ping-{i}", 0, [PingSent(complaint_id=f"ping-{i}", n=i)], Cause.of_request(f"bench-{i}", "bench")
        )

    runtime.consumer.subscribe(topic, f"{topic}-group", {PingSent: answer})
    await runtime.start()
    probe.instrument(runtime)
    try:
        hops: list[Hop] = []
        for i in range(warmup + n):
            if i == warmup:
                COMMANDS.counts.clear()
            hop = probe.open(i)
            hop.started = time.perf_counter()
            await ping(i)
            hop.appended = time.perf_counter()
            # Wait for the inbox record too, so that one hop's tail never overlaps the next one.
            await _within(asyncio.gather(hop.answered, hop.recorded), f"ping {i}", hop)
            if i >= warmup:
                hops.append(hop)
                advance_latency()
        commands = {k: v / n for k, v in sorted(COMMANDS.counts.items())}

        burst = [probe.open(i) for i in range(warmup + n, warmup + 2 * n)]
        for hop in burst:
            hop.answered.add_done_callback(lambda _f: advance_throughput())
        gate = asyncio.Semaphore(concurrency)

        async def gated_ping(i: int) -> None:
            async with gate:
                await ping(i)

        t0 = time.perf_counter()
        await asyncio.gather(*(gated_ping(i) for i in range(warmup + n, warmup + 2 * n)))
        await _all_within(burst)
        throughput = n / (time.perf_counter() - t0)
    finally:
        await runtime.stop()

    def ms(a: float, b: float) -> float:
        return (b - a) * 1000

    stages = {
        "store.append (ping)": [ms(h.started, h.appended) for h in hops],
        "append returned → follower round starts": [ms(h.appended, max(h.appended, h.round)) for h in hops],
        "follower round → producer": [ms(max(h.appended, h.round), h.produced) for h in hops],
        "producer → Kafka → kernel consumer": [ms(h.produced, h.received) for h in hops],
        "inbox.seen → handler starts": [ms(h.received, h.entered) for h in hops],
        "handler's store.append": [ms(h.entered, h.answered.result()) for h in hops],
        "inbox record": [ms(h.answered.result(), h.recorded.result()) for h in hops],
    }
    return KernelFigures(
        hop_ms=[ms(h.started, h.answered.result()) for h in hops],
        full_ms=[ms(h.started, h.recorded.result()) for h in hops],
        stages_ms=stages,
        commands_per_hop=commands,
        throughput=throughput,
    )


async def _within(awaitable, what: str, hop: Hop | None):
    try:
        return await asyncio.wait_for(awaitable, TIMEOUT_S)
    except TimeoutError:
        reached = ""
        if hop is not None:
            reached = ", ".join(k for k in ("appended", "produced", "received", "entered") if getattr(hop, k))
        raise RuntimeError(f"{what} not handled within {TIMEOUT_S}s (reached: {reached or 'nothing'})") from None


async def _all_within(hops: list[Hop]) -> None:
    """Wait for every hop; fail only when none finished for TIMEOUT_S (a slow run is still a result)."""
    pending = {h.answered for h in hops}
    while pending:
        done, pending = await asyncio.wait(pending, timeout=TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise RuntimeError(
                f"no hop of the burst finished within {TIMEOUT_S}s ({len(hops) - len(pending)} of {len(hops)} done)"
            )


# --- 3. the store alone ----------------------------------------------------------------------------


async def measure_store(
    client: AsyncMongoClient, database: str, n: int, warmup: int, advance: Callable[[], None]
) -> dict[str, list[float]]:
    """Latencies (ms) of the store operations a hop is made of, on collections the kernel built.

    Per append, as ``EventStore.append`` does it: the ``pending`` entry then the commit (two
    ``insert_one``); ``find_one`` by ``_id`` of that newest commit (how the
    follower resolves an entry) and of an id that is not there (the inbox check of a new event);
    the follower's ``delete_many`` of the entries it carried out.
    The follower's scan of ``pending`` is taken about 50 times while the commits collection grows
    to ``warmup + n`` documents with ``pending`` (nearly) empty, as it is between rounds, then
    about 50 times with 500 entries in it (a backlog of one full batch).
    """
    store = EventStore(client[database], "/bench", registry)
    await store.setup()
    await store.pending.create_index("position", name="position")  # as Runtime.start does
    figures: dict[str, list[float]] = {
        "pending": [],
        "insert_one": [],
        "find_one": [],
        "miss": [],
        "delete": [],
        "scan_empty": [],
        "scan_full": [],
    }

    async def scan() -> float:
        t0 = time.perf_counter()
        await store.pending.find({}).sort("position", ASCENDING).limit(500).to_list()  # follow_once
        return (time.perf_counter() - t0) * 1000

    def entry(i: int) -> dict:
        return {
            "_id": f"commit-{i}",
            "kind": "commit",
            "ref": stream_key(f"probe-{i}", 1),
            "position": store.next_position(),
            "created_at": datetime.now(UTC),
            "published": False,
        }

    every = max(1, (warmup + n) // 50)
    for i in range(warmup + n):
        pending = entry(i)
        doc = {
            "_id": pending["ref"],
            "commit_id": pending["_id"],
            "stream_id": f"probe-{i}",
            "version": 1,
            "position": pending["position"],
            "recorded_at": datetime.now(UTC),
            "metadata": {"handler": "bench"},
            "events": [sample_message(f"probe-{i}")[1].decode()],
        }
        t0 = time.perf_counter()
        await store.pending.insert_one(pending)
        t1 = time.perf_counter()
        await store.commits.insert_one(doc)
        t2 = time.perf_counter()
        await store.commits.find_one({"_id": doc["_id"]})
        t3 = time.perf_counter()
        await store.commits.find_one({"_id": str(uuid.uuid4())}, {"_id": 1})  # as Inbox.seen
        t4 = time.perf_counter()
        await store.pending.delete_many({"_id": {"$in": [pending["_id"]]}})
        t5 = time.perf_counter()
        if i >= warmup:
            for name, a, b in (
                ("pending", t0, t1),
                ("insert_one", t1, t2),
                ("find_one", t2, t3),
                ("miss", t3, t4),
                ("delete", t4, t5),
            ):
                figures[name].append((b - a) * 1000)
            advance()
        if i % every == every - 1:
            figures["scan_empty"].append(await scan())
    await store.pending.insert_many([entry(warmup + n + i) for i in range(500)])
    for _ in range(len(figures["scan_empty"])):
        figures["scan_full"].append(await scan())
    return figures


async def id_lookup_plan(client: AsyncMongoClient, database: str) -> str:
    """How the store runs ``find_one({"_id": ...})``: FerretDB reports SQLite's query plan."""
    explained = await client[database].command(
        "explain", {"find": "commits", "filter": {"_id": "probe-0@1"}, "limit": 1, "singleBatch": True}
    )
    planner = explained.get("queryPlanner", {})
    plan = "; ".join(planner.get("Plan", [])) or str(planner.get("winningPlan", {}).get("stage", "?"))
    pushed = f", filterPushdown={explained['filterPushdown']}" if "filterPushdown" in explained else ""
    return f"{plan}{pushed}"


# --- the run ---------------------------------------------------------------------------------------


async def run(n: int, warmup: int, concurrency: int, console: Console) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    mongodb_url = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/")
    run_id = uuid.uuid4().hex[:8]
    database, raw_topic, kernel_topic = f"bench_{run_id}", f"bench.{run_id}.raw", f"bench.{run_id}.kernel"
    settings = KernelSettings(
        service_name=f"bench-{run_id}",
        kafka_bootstrap_servers=bootstrap,
        mongodb_url=mongodb_url,
        mongodb_database=database,
        # far above any hop: a hop that waited for the poll would show as ≥ 60 s
        outbox_poll_interval_s=60.0,
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    client = AsyncMongoClient(mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000)
    info = await client.admin.command("buildInfo")
    store_version = info.get("version", "?")
    if "ferretdbVersion" in info:
        store_version += f" (FerretDB {info['ferretdbVersion']})"
    for future in admin.create_topics([NewTopic(raw_topic, settings.topic_partitions, 1)]).values():
        future.result()

    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:

            def bar(label: str) -> Callable[[], None]:
                task = progress.add_task(label, total=n)
                return lambda: progress.advance(task)

            store_bar = bar("store operations")
            raw_bar = bar("raw Kafka round trips")
            kernel_bar, kernel_burst_bar = bar("kernel hops (sequential)"), bar("kernel hops (concurrent)")
            store = await measure_store(client, f"{database}_store", n, warmup, store_bar)
            plan = await id_lookup_plan(client, f"{database}_store")
            raw_ms, raw_rate = await asyncio.to_thread(measure_raw_kafka, bootstrap, raw_topic, n, warmup, raw_bar)
            kernel = await measure_kernel(settings, kernel_topic, n, warmup, concurrency, kernel_bar, kernel_burst_bar)
    finally:
        for name in (database, f"{database}_store"):
            await client.drop_database(name)
        await client.close()
        for future in admin.delete_topics([raw_topic, kernel_topic, f"{kernel_topic}.dlq"]).values():
            future.exception(timeout=10)  # wait, so that nothing is left half done at exit

    rows = [
        Row("raw confluent-kafka: produce → consume", raw_ms, raw_rate),
        Row("kernel hop: append → handler's append returned", kernel.hop_ms, kernel.throughput),
        Row("kernel hop + inbox record (all but the ack)", kernel.full_ms),
        Row("store insert_one (an append's pending entry)", store["pending"]),
        Row("store insert_one (a commit, the kernel's indexes)", store["insert_one"]),
        Row("store find_one by _id, newest doc (follower resolve)", store["find_one"]),
        Row("store find_one by _id, a miss (inbox check)", store["miss"]),
        Row("store delete_many _id $in (follower, 1 entry)", store["delete"]),
        Row(f"store: follower's pending scan, 0 pending, ≤{warmup + n} commits", store["scan_empty"]),
        Row("store: follower's pending scan, 500 pending", store["scan_full"]),
    ]
    console.print(header(bootstrap, mongodb_url, store_version, n, warmup))
    console.print(
        table(
            "Round trips (ms)",
            rows,
            caption=(
                f"msg/s: raw = {n} messages produced back to back until the last is consumed; "
                f"kernel = {n} appends, {concurrency} in flight, until the last handler's append returned.\n"
                f"Store plan of find_one by _id: {plan}"
            ),
        )
    )
    per_hop = ", ".join(f"{name} {count:.1f}" for name, count in kernel.commands_per_hop.items())
    console.print(
        table(
            "Kernel hop, stage by stage (the sequential run, ms)",
            [Row(name, values) for name, values in kernel.stages_ms.items()],
            caption=f"Store commands per hop (every client): {sum(kernel.commands_per_hop.values()):.1f} = {per_hop}",
        )
    )


def header(bootstrap: str, mongodb_url: str, store_version: str, n: int, warmup: int) -> str:
    return (
        f"[bold]Round-trip bench[/bold]  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"  broker   {bootstrap}  (confluent-kafka {confluent_kafka.__version__}, "
        f"librdkafka {confluent_kafka.libversion()[0]})\n"
        f"  store    {mongodb_url}  server {store_version}\n"
        f"  N={n} (after {warmup} warm-up)  cores={os.cpu_count()}  "
        f"Python {platform.python_version()}"
    )


def table(title: str, rows: list[Row], caption: str = "") -> Table:
    out = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    out.add_column("measurement")
    for name in ("p50", "p99", "mean"):
        out.add_column(name, justify="right")
    # a log that grows makes some steps slower: compare the first and the last tenth of the run
    out.add_column("p50 first→last 10%", justify="right")
    out.add_column("msg/s", justify="right")
    for row in rows:
        values, tenth = row.latencies_ms, max(1, len(row.latencies_ms) // 10)
        out.add_row(
            row.name,
            *(f"{v:.2f}" for v in (percentile(values, 0.5), percentile(values, 0.99), sum(values) / len(values))),
            f"{percentile(values[:tenth], 0.5):.1f} → {percentile(values[-tenth:], 0.5):.1f}",
            f"{row.throughput:,.0f}" if row.throughput else "",
        )
    return out


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    messages: int = typer.Option(500, "--messages", "-n", min=1, help="Measured messages per row."),
    warmup: int = typer.Option(50, "--warmup", min=0, help="Messages sent first and not measured."),
    concurrency: int = typer.Option(50, "--concurrency", min=1, help="Appends in flight in the kernel throughput run."),
) -> None:
    """Measure raw Kafka, the kernel's persisted hop and the store, then print one table."""
    logging.basicConfig(level=logging.WARNING)
    # FastStream's broker logs two INFO lines per message to stdout (it sets that logger's level
    # itself on start, so a filter it keeps is what silences them): they would hide the table
    # (and the kernel's broker logger, "faststream", says "callback ... is being executed" at stop)
    for name in ("faststream.access.confluent", "faststream"):
        logging.getLogger(name).addFilter(lambda r: r.levelno >= logging.WARNING)
    # rich falls back to 80 columns when piped; the tables need more to stay one line a row
    console = Console() if sys.stdout.isatty() else Console(width=120)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the services' loop (ADR 0046)
        runner.run(run(messages, warmup, concurrency, console))


if __name__ == "__main__":
    app()
