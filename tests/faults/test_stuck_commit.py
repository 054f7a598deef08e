"""A broker that stops answering mid-burst: the consumer's commits cannot finish, liveness says
so in one line, and the process the orchestrator then stops and starts again loses nothing."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
from pymongo import AsyncMongoClient

from services.kernel.eventstore import EventStore
from tests.integration.simulators import free_port
from tests.integration.story_events import registry
from tests.integration.support import ServiceProcess, consumer_lag, count_at_least, produce_raw, wait_for
from tests.integration.test_graceful_stop import applied_once_each, burst

STOP_TIMEOUT_S = 10  # the process's own deadline after SIGTERM (STOP_TIMEOUT_S)


async def test_a_consumer_whose_commits_hang_fails_liveness_with_its_reason_and_a_restart_applies_every_event_once(
    fault_stack, tmp_path, processes
):
    settings = fault_stack.settings()
    topic, group, port = f"fault.{settings.service_name}.v1", f"{settings.service_name}-g", free_port()
    client = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    db = client[settings.database_name]
    store = EventStore(db, "/services/test", registry)
    produce_raw(settings.kafka_bootstrap_servers, topic, burst(store, settings.service_name, 40, 10))
    stuck = dict(
        TEST_GROUP=group,
        TEST_HTTP_PORT=str(port),
        LIVENESS_STALL_S="4",
        KAFKA_COMMIT_TIMEOUT_S="1",
        STOP_TIMEOUT_S=str(STOP_TIMEOUT_S),
    )
    log = tmp_path / "first.log"
    first = ServiceProcess("consumer", settings, topic, tmp_path, log=log, **stuck)
    processes.append(first)
    try:
        await wait_for(lambda: count_at_least(db["inbox"], 40), timeout=120)
        fault_stack.signal("kafka", signal.SIGSTOP)  # the broker stops answering, its sockets stay open
        assert await db["inbox"].count_documents({}) < 400, "the broker stopped mid-burst"

        live = await wait_for(lambda: _answer(port, "/health/live", 503), timeout=60, every=0.5)
        assert live.json()["status"] == "stuck"
        assert "has lag on" in live.json()["reasons"][0] and "made no progress" in live.json()["reasons"][0]
        ready = _answer(port, "/health/ready", 200)
        assert ready is not None, "the store answers: still ready (the broker is reported)"
        said = [line for line in log.read_text().splitlines() if "liveness fails" in line]
        assert len(said) == 1, said

        # What the kubelet does when liveness fails: SIGTERM, and the process ends in time.
        first.proc.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        exit_code = first.proc.wait(STOP_TIMEOUT_S + 5)
        print(f"\nstuck consumer: SIGTERM to exit {time.monotonic() - stopping:.1f} s, exit code {exit_code}")
        assert exit_code in (0, -signal.SIGALRM), log.read_text()[-3000:]

        fault_stack.signal("kafka", signal.SIGCONT)
        second_port = free_port()
        second = ServiceProcess(
            "consumer", settings, topic, tmp_path, TEST_GROUP=group, TEST_HTTP_PORT=str(second_port)
        )
        processes.append(second)
        # The first may have handled every message it had fetched while its commits hung (the
        # inbox can be full before the second is up): the restart is done when the second, up,
        # has read them all again from the group's offset and committed them.
        await wait_for(lambda: _answer(second_port, "/health/ready", 200), timeout=60, every=0.5)
        await wait_for(lambda: count_at_least(db["inbox"], 400), timeout=180)
        await wait_for(lambda: _committed_all(settings, group, topic), timeout=180)
        assert second.stop() == 0
        await applied_once_each(db, registry, 40, 10)
    finally:
        fault_stack.signal("kafka", signal.SIGCONT)
        await client.drop_database(settings.database_name)
        await client.close()


async def _committed_all(settings, group: str, topic: str) -> bool:
    return await asyncio.to_thread(consumer_lag, settings.kafka_bootstrap_servers, group, [topic]) == 0


def _answer(port: int, path: str, status: int) -> httpx.Response | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=3)
    except httpx.TransportError:
        return None
    return response if response.status_code == status else None
