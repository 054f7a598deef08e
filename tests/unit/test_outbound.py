"""Outbound HTTP calls (services/kernel/outbound.py): which answers and failures are worth another
try, with the server's Retry-After, through the kernel's retries; on httpx's MockTransport."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from services.kernel import outbound
from services.kernel.outbound import retry_after_s
from services.kernel.resilience import RetriesExhausted, Retryable, RetryPolicy, retrying
from tests.unit.test_resilience import Pauses


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A neighbour that gives these answers in turn (an exception: the request fails so), and the
    requests it was sent."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def answering(*answers: httpx.Response | Exception):
    transport, seen = scripted(*answers)
    return outbound.client("http://orders/", 2.0, transport=transport), seen


async def read(client: httpx.AsyncClient, who: str = "") -> tuple[int, bytes]:
    async with outbound.request(client, "GET", "/orders/o-1", who) as response:
        return response.status_code, await response.aread()


async def test_a_503_with_retry_after_is_asked_again_after_the_servers_pause():
    client, seen = answering(httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(200, text="{}"))
    pauses = Pauses()

    answer, attempts = await retrying(lambda: read(client), RetryPolicy(base_s=0.01), pauses)

    assert (answer, attempts, pauses.taken) == ((200, b"{}"), 2, [7])
    assert [str(r.url) for r in seen] == ["http://orders/orders/o-1"] * 2


async def test_a_429_asking_for_an_hour_gives_up_at_once_as_rate_limited():
    client, seen = answering(httpx.Response(429, headers={"Retry-After": "3600"}))

    with pytest.raises(RetriesExhausted) as failed:
        await retrying(lambda: read(client, "ups"), RetryPolicy(max_retry_after_s=30), Pauses())

    assert (len(seen), failed.value.last.kind, failed.value.last.retry_after_s) == (1, "rate_limited", 3600)
    assert str(failed.value) == "ups answered HTTP 429 (asked to wait longer than allowed)"


async def test_timeouts_and_refused_connections_are_retried_and_named():
    client, _ = answering(
        httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.Response(404), httpx.Response(200)
    )

    (status, _), attempts = await retrying(lambda: read(client, "fedex"), RetryPolicy(attempts=4), Pauses())

    assert (status, attempts) == (404, 3)  # an answer other than 429/5xx is the caller's to read


async def test_a_failure_is_sorted_into_its_kind_with_a_reason_naming_the_neighbour():
    client, _ = answering(httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.Response(502))
    failures = []
    for _ in range(3):
        with pytest.raises(Retryable) as failed:
            await read(client, "usps")
        failures.append((failed.value.kind, failed.value.reason))

    assert failures == [
        ("timeout", "usps did not answer within 2 s (ReadTimeout)"),
        ("unavailable", "usps unreachable (ConnectError: refused)"),
        ("unavailable", "usps answered HTTP 502"),
    ]


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 12, 7, 1, 0, 0, tzinfo=UTC)
    assert retry_after_s("120") == 120
    assert retry_after_s("Mon, 07 Dec 2026 01:00:30 GMT", lambda: now) == 30
    assert retry_after_s("Mon, 07 Dec 2026 00:59:00 GMT", lambda: now) == 0
    assert retry_after_s("soon") is None and retry_after_s(None) is None
