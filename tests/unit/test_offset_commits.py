"""Offsets are committed behind the partitions' workers (services/kernel/consumer.py Commits): a
worker never waits for a commit, one commit carries the latest due offset of every partition, and
a failed commit is tried again; progress is counted only when a commit lands."""

from __future__ import annotations

import asyncio
from unittest.mock import Mock

import pytest
from confluent_kafka import KafkaError, KafkaException
from faststream.confluent.helpers import AsyncConfluentConsumer

from services.kernel import consumer
from services.kernel.consumer import Commits


class Raw:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def topic(self) -> str:
        return "complaints.intake.v1"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class Polled:
    """A message as FastStream hands it over, polled by a (stand-in) confluent consumer."""

    def __init__(self, partition: int, offset: int) -> None:
        self.raw_message, self.consumer, self.committed = (
            Raw(partition, offset),
            Mock(spec=AsyncConfluentConsumer),
            None,
        )

    def __repr__(self) -> str:
        return f"{self.raw_message.partition()}@{self.raw_message.offset()}"


@pytest.fixture
def broker(monkeypatch):
    """The commits the broker receives; each waits for the test to let it answer (or fail)."""
    calls: list[tuple[list[str], asyncio.Future]] = []

    async def commit(messages, timeout_s, thread):
        answer = asyncio.get_running_loop().create_future()
        calls.append(([repr(m) for m in messages], answer))
        await answer

    monkeypatch.setattr(consumer, "_commit_offsets", commit)
    return calls


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_worker_goes_on_while_its_commit_is_in_flight_and_the_next_commit_carries_the_latest_of_each_partition(
    broker,
):
    landed: list[str] = []
    commits = Commits(timeout_s=5, backoff_max_s=0.01, committed=lambda m: landed.append(repr(m)))
    await asyncio.wait_for(commits.due(Polled(0, 1)), 0.1)
    await settle()
    assert [offsets for offsets, _ in broker] == [["0@1"]]
    for message in (Polled(0, 2), Polled(1, 7), Polled(0, 3)):  # none waits for the commit in flight
        await asyncio.wait_for(commits.due(message), 0.1)
    assert landed == [], "no progress before the broker answers"
    broker[0][1].set_result(None)
    await settle()
    assert landed == ["0@1"]
    assert [offsets for offsets, _ in broker][1] == ["0@3", "1@7"]
    broker[1][1].set_result(None)
    await asyncio.wait_for(commits.flush(1), 1)
    assert landed == ["0@1", "0@3", "1@7"]


async def test_a_failed_commit_is_tried_again_and_counts_as_progress_only_when_it_lands(broker):
    landed: list[str] = []
    commits = Commits(timeout_s=5, backoff_max_s=0.01, committed=lambda m: landed.append(repr(m)))
    await commits.due(Polled(0, 1))
    await settle()
    broker[0][1].set_exception(KafkaException(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS)))
    await asyncio.sleep(0.05)
    assert landed == [] and [offsets for offsets, _ in broker] == [["0@1"], ["0@1"]]
    broker[1][1].set_result(None)
    await asyncio.wait_for(commits.flush(1), 1)
    assert landed == ["0@1"]


async def test_offsets_that_become_due_within_the_commit_interval_go_in_one_commit(broker):
    landed: list[str] = []
    commits = Commits(timeout_s=5, backoff_max_s=0.01, committed=lambda m: landed.append(repr(m)), interval_s=0.2)
    await commits.due(Polled(0, 1))
    await settle()
    broker[0][1].set_result(None)
    await settle()
    for offset in (2, 3, 4):
        await commits.due(Polled(0, offset))
        await asyncio.sleep(0.02)
    assert [offsets for offsets, _ in broker] == [["0@1"]], "nothing more within the interval"
    await asyncio.sleep(0.2)
    assert [offsets for offsets, _ in broker] == [["0@1"], ["0@4"]], "then the latest, once"
    broker[1][1].set_result(None)
    await asyncio.wait_for(commits.flush(1), 1)
    assert landed == ["0@1", "0@4"]
