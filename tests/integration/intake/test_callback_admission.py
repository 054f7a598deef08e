"""Overload (issue 14, ADR 0051): a "call me" that would wait too long behind the calls already
queued is refused with 503 and Retry-After, and nothing of it is recorded; once the queue moves,
the same click goes through. On the real broker and store, through the public API; the lag is
made as routing's consumer would make it, by committing offsets of its group."""

from __future__ import annotations

import asyncio

from confluent_kafka import Consumer, TopicPartition

from contracts import TOPICS
from tests.integration.intake.conftest import running_intake
from tests.integration.intake.test_access_limits import appended, bearer, complaint
from tests.integration.support import commit_offsets, kafka_config, wait_for

INTAKE = TOPICS["intake"]


def ends(bootstrap: str) -> dict[int, int]:
    """The end offset of each partition of intake's topic (a plain consumer's synchronous calls:
    an AdminClient's answers run Python in librdkafka's thread, see kernel/lag.py)."""
    consumer = Consumer(kafka_config(bootstrap, **{"group.id": "test-ends", "enable.auto.commit": False}))
    try:
        partitions = consumer.list_topics(INTAKE, timeout=10).topics[INTAKE].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(INTAKE, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


async def test_a_call_me_is_refused_while_routing_is_far_behind_and_goes_through_once_it_caught_up(
    intake_config, unique
):
    config = await intake_config(
        consumer_group_prefix=f"test-{unique}.", callback_admission_wait_s=5, callbacks_per_phone=1
    )
    bootstrap, routing = config.kafka_bootstrap_servers, f"test-{unique}.routing"
    async with running_intake(config) as intake:
        before = await asyncio.to_thread(ends, bootstrap)
        cases = [(await intake.post("/api/complaints", json=complaint())).json() for _ in range(8)]

        async def published() -> dict[int, int] | None:  # the ends once the 8 filings are on the topic
            after = await asyncio.to_thread(ends, bootstrap)
            return after if sum(after.values()) - sum(before.values()) >= 8 else None

        after = await wait_for(published, timeout=20, every=0.2)
        # Routing took one message in two seconds, and the rest wait: about 14 s behind, over the 5 s allowed.
        await asyncio.to_thread(commit_offsets, bootstrap, routing, INTAKE, before)
        await asyncio.sleep(2)
        busiest = max(after, key=lambda p: after[p] - before[p])
        await asyncio.to_thread(commit_offsets, bootstrap, routing, INTAKE, {**before, busiest: before[busiest] + 1})
        behind = intake.app.state.services.callbacks_behind
        await wait_for(lambda: behind.behind_s() >= 5, timeout=20, every=0.2)

        refused = await intake.post(
            f"/api/complaints/{cases[0]['complaint_id']}/callback",
            json={"phone": "+447700900301"},
            headers=bearer(cases[0]),
        )
        assert refused.status_code == 503
        assert refused.json()["code"] == "callbacks_backlogged"
        assert "nothing was recorded" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "CallbackRequested" not in await appended(config)

        await asyncio.to_thread(commit_offsets, bootstrap, routing, INTAKE, after)  # routing caught up
        await wait_for(lambda: behind.behind_s() < 5, timeout=20, every=0.2)
        accepted = await intake.post(
            f"/api/complaints/{cases[0]['complaint_id']}/callback",
            json={"phone": "+447700900301"},
            headers=bearer(cases[0]),
        )
        assert accepted.status_code == 202, "the refused click cost no attempt of the phone's one"
    assert (await appended(config)).count("CallbackRequested") == 1
