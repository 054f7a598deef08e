"""Waiting and producing helpers shared by the integration tests."""

from __future__ import annotations

import asyncio

from confluent_kafka import Producer


async def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    """Await ``predicate()`` until it returns something truthy; fail with its last result."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: last result {result!r}")
        await asyncio.sleep(every)


def produce_raw(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes, list]]) -> None:
    """Put messages on a topic exactly as given (for poison-message tests)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value, headers in messages:
        producer.produce(topic, key=key, value=value, headers=headers)
    assert producer.flush(10) == 0
