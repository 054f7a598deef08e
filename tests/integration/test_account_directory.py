"""Notify's seller-account adapter (services/notify/adapters/accounts.py) against the real simulator:
a passing 5xx is tried again before the loop guard is told "cannot say"."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.notify.adapters.accounts import AccountDirectory

LOCKED_SELLER = "sel-48213"


@pytest.fixture
async def url(order_system_url: str) -> AsyncIterator[str]:
    yield order_system_url
    async with httpx.AsyncClient() as client:
        (await client.delete(f"{order_system_url}/faults")).raise_for_status()


async def fail_next(url: str, times: int, status: int) -> None:
    async with httpx.AsyncClient() as client:
        (await client.put(f"{url}/faults", json={"times": times, "status": status})).raise_for_status()


async def test_a_locked_account_is_still_found_locked_after_two_503_answers(url):
    await fail_next(url, times=2, status=503)
    directory = AccountDirectory(url)
    try:
        assert await directory.is_locked(LOCKED_SELLER) is True
    finally:
        await directory.aclose()


async def test_a_system_that_keeps_answering_503_leaves_the_fact_unknown(url):
    await fail_next(url, times=3, status=503)
    directory = AccountDirectory(url)
    try:
        assert await directory.is_locked(LOCKED_SELLER) is None
        assert await directory.is_locked("sel-00001") is False  # the fault is spent: it answers again
        assert await directory.is_locked("sel-99999") is None  # no such account
    finally:
        await directory.aclose()
