"""Does the customer-experience projection keep up? A generated mix of the four services' events
(tools/demo_week.py) fed at a steady rate to a real intake app, its lag sampled as it goes; then
the cost of reading the figures and of rebuilding the read model.

Against the broker and store named by KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL, in a database and
consumer group of its own, removed at the end. Prints its figures (docs/performance.md keeps them).

    python -m bench.metrics --rate 33 --seconds 60 [--rate 100 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from confluent_kafka import Producer

from contracts import TOPICS, registry
from contracts.envelope import Envelope, to_kafka
from services.intake.app import create_app
from services.intake.domain import complaint_stream
from services.intake.projections import ExperienceFacts
from services.intake.settings import IntakeSettings
from services.kernel import auth
from services.kernel.eventstore import Cause, EventStore
from services.kernel.projections import Projector
from tests.integration.support import skip_history
from tools.demo_week import week_of_traffic


async def feed(app_store: EventStore, producer: Producer, traffic, rate: float, seconds: float, sample) -> dict:
    """Send ``rate`` events a second for ``seconds`` (intake's own appended to its log, the others
    produced on their topics), sampling the lag every half second; then wait until it drains."""
    versions: dict[str, int] = {}
    started, sent, lags = time.perf_counter(), 0, []
    next_sample = started
    while sent < len(traffic) and time.perf_counter() - started < seconds:
        due = int((time.perf_counter() - started) * rate)
        for service, event in traffic[sent:due]:
            if service == "intake":
                stream = complaint_stream(event.complaint_id)
                version = versions.get(stream, 0)
                await app_store.append(stream, version, [event], Cause.of_request(str(uuid.uuid4()), "bench"))
                versions[stream] = version + 1
            else:
                envelope = Envelope(
                    id=str(uuid.uuid4()),
                    type=event.ce_type(),
                    source=f"/services/{service}",
                    subject=event.subject(),
                    time=datetime.now(UTC),
                    correlationid=str(uuid.uuid4()),
                    data=event.model_dump(mode="json"),
                )
                key, value, headers = to_kafka(envelope)
                producer.produce(TOPICS[service], key=key, value=value, headers=headers)
        producer.poll(0)
        sent = max(sent, min(due, len(traffic)))
        if time.perf_counter() >= next_sample:
            lags.append(await sample(sent))
            next_sample += 0.5
        await asyncio.sleep(0.02)
    producer.flush(30)
    fed_s = time.perf_counter() - started
    while await sample(sent) > 0:
        await asyncio.sleep(0.2)
    return {
        "sent": sent,
        "fed_s": fed_s,
        "drained_s": time.perf_counter() - started - fed_s,
        "lag_max": max(lags or [0]),
        "lag_p50": statistics.median(lags or [0]),
        "lag_last": lags[-1] if lags else 0,
    }


async def run(rates: list[float], seconds: float, bootstrap: str, mongodb_url: str) -> None:
    name = f"bench-metrics-{uuid.uuid4().hex[:8]}"
    settings = IntakeSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_url=mongodb_url,
        service_name=name,
        mongodb_database=f"bench_{name.replace('-', '_')}",
        order_system_url="http://127.0.0.1:9",
    )
    for topic in TOPICS.values():
        await asyncio.to_thread(skip_history, bootstrap, settings.consumer_group, topic)
    app = create_app(settings)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    supervisor = {
        "Authorization": "Bearer "
        + auth.sign({"sub": "sup-bench", "role": "supervisor"}, settings.signing_key, timedelta(hours=1))
    }
    async with app.router.lifespan_context(app):
        store: EventStore = app.state.services.runtime.store
        db = store.db
        applied_base = [0]

        async def sample(sent: int) -> int:
            """Events sent but not yet in the read model: not consumed or not projected."""
            logged = await db["commits"].estimated_document_count() + await db["inbox"].estimated_document_count()
            return sent - (logged - applied_base[0]) + await db["pending"].estimated_document_count()

        try:
            for i, rate in enumerate(rates):
                traffic = week_of_traffic(datetime.now(UTC), seed=100 + i, per_day=max(10, int(rate * seconds / 7)))
                applied_base[0] = (
                    await db["commits"].estimated_document_count() + await db["inbox"].estimated_document_count()
                )
                result = await feed(store, producer, traffic, rate, seconds, sample)
                print(
                    f"rate {rate:.0f} ev/s: sent {result['sent']} in {result['fed_s']:.1f} s "
                    f"({result['sent'] / result['fed_s']:.1f} ev/s); lag p50 {result['lag_p50']:.0f}, "
                    f"max {result['lag_max']:.0f}, at the end {result['lag_last']:.0f} events; "
                    f"drained {result['drained_s']:.1f} s after the last",
                    flush=True,
                )
            cases = await db["experience_facts"].estimated_document_count()
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://intake", timeout=120
            ) as client:
                reads = []
                for path in (
                    "/api/metrics/figures?period=day&days=28",
                    "/api/metrics/figures?period=window&by=team",
                    "/api/metrics/breaches",
                    "/metrics",
                ):
                    t = time.perf_counter()
                    answer = await client.get(path, headers=supervisor)
                    assert answer.status_code == 200, answer.text
                    reads.append(
                        f"{path.split('?')[0]}{'?' + path.split('?')[1] if '?' in path else ''} "
                        f"{(time.perf_counter() - t) * 1000:.0f} ms"
                    )
            print(f"reading the figures of {cases} case documents: " + "; ".join(reads), flush=True)
            projector = Projector(EventStore(db, store.source, registry), [ExperienceFacts(db)])
            t = time.perf_counter()
            entries = await projector.rebuild("experience_facts")
            took = time.perf_counter() - t
            print(
                f"rebuild of experience_facts: {entries} log entries in {took:.1f} s ({entries / took:.0f} entries/s)",
                flush=True,
            )
        finally:
            await db.client.drop_database(db.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, action="append", help="events a second (repeatable)")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(
        run(
            args.rate or [33.0],
            args.seconds,
            os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/"),
        )
    )


if __name__ == "__main__":
    main()
