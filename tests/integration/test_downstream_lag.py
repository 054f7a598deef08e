"""How far behind the services downstream are, measured on the real broker (kernel/lag.py, ADR 0051):
a group's uncommitted messages over the pace at which it has been committing; a group that
commits nothing counts for nothing."""

from __future__ import annotations

import asyncio

from services.kernel.kafka import client_config, ensure_topics
from services.kernel.lag import RATE_WINDOW_S, DownstreamLag
from tests.integration.support import commit_offsets, produce_raw


async def test_a_group_is_as_far_behind_as_its_lag_at_its_recent_pace_and_a_stopped_one_counts_for_nothing(
    settings, topic, unique
):
    group, now = f"test-{unique}-downstream", [100.0]
    await asyncio.to_thread(ensure_topics, settings, [topic], 1)
    await asyncio.to_thread(produce_raw, settings.kafka_bootstrap_servers, topic, [(b"k", b"{}", [])] * 50)
    behind = DownstreamLag(client_config(settings), [(group, topic)], own=lambda: 1.5, clock=lambda: now[0])
    try:
        await asyncio.to_thread(commit_offsets, settings.kafka_bootstrap_servers, group, topic, {0: 10})
        await behind.poll()
        assert behind.groups[0].lag == 40
        assert behind.behind_s() == 1.5, "one look gives no pace yet: only this service's own part"

        now[0] += 2
        await asyncio.to_thread(commit_offsets, settings.kafka_bootstrap_servers, group, topic, {0: 30})
        await behind.poll()
        assert behind.groups[0].lag == 20
        assert behind.behind_s() == 1.5 + 20 / 10, "20 waiting at 10 a second"
        assert behind.figures() == {"unpublished": 1.5, group: 2.0}

        now[0] += RATE_WINDOW_S + 1  # nothing committed since: stopped, or restarting
        await behind.poll()
        await behind.poll()
        assert behind.groups[0].lag == 20
        assert behind.behind_s() == 1.5, "no pace to judge by: not counted"
    finally:
        await behind.close()
