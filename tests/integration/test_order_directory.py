"""The OrderDirectory port: one contract for the fake and the HTTP adapter, plus the HTTP adapter's failures.

The HTTP adapter talks to the real order simulator, started once per session as a process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from services.intake.adapters.orders import (
    ContactOnFile,
    DirectoryUnavailable,
    FakeOrderDirectory,
    HttpOrderDirectory,
    OrderDirectory,
)
from tests.integration.simulators import free_port

SEED = json.loads((Path(__file__).resolve().parents[2] / "infra/simulators/orders.json").read_text())

STORY_1_ORDER = "114-2087456-3319876"
STORY_2_ORDER = "114-5523190-0012345"
STORY_3_ORDER, STORY_3_SELLER = "114-7710042-5501234", "sel-48213"


@dataclass
class Subject:
    directory: OrderDirectory
    make_unavailable: Callable[[], Awaitable[None]]


def fake_directory() -> FakeOrderDirectory:
    return FakeOrderDirectory(
        orders={o["order_id"]: o for o in SEED["orders"]}, sellers={s["seller_id"]: s for s in SEED["sellers"]}
    )


async def set_fault(url: str, **fault) -> None:
    async with httpx.AsyncClient() as client:
        if fault:
            (await client.put(f"{url}/faults", json=fault)).raise_for_status()
        else:
            (await client.delete(f"{url}/faults")).raise_for_status()


@pytest.fixture(params=["fake", "http"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "fake":
        fake = fake_directory()

        async def make_unavailable() -> None:
            fake.unavailable = True

        yield Subject(fake, make_unavailable)
        return
    url = request.getfixturevalue("order_system_url")
    async with HttpOrderDirectory(url, timeout_s=1.0, backoff_s=0.01) as directory:
        yield Subject(directory, lambda: set_fault(url, times=3, status=503))
    await set_fault(url)


class TestOrderDirectoryContract:
    """What every OrderDirectory does, run against the fake and against HTTP to the simulator."""

    async def test_an_order_gives_the_contact_of_the_customer_who_placed_it(self, subject):
        contact = await subject.directory.order_contact(STORY_2_ORDER)
        assert contact == ContactOnFile(
            email="sam.okafor@example.com",
            phone="+447700900123",
            customer_id="cust-2002",
            seller_id="sel-00001",
            account_status="active",
        )

    async def test_the_buyer_of_a_locked_out_sellers_order_can_still_be_reached(self, subject):
        contact = await subject.directory.order_contact(STORY_3_ORDER)
        assert (contact.email, contact.customer_id, contact.seller_id) == (
            "priya.nair@example.net",
            "cust-3003",
            STORY_3_SELLER,
        )

    async def test_a_locked_seller_is_found_with_her_contact_and_status(self, subject):
        contact = await subject.directory.seller_contact(STORY_3_SELLER)
        assert contact == ContactOnFile(
            email="maria.chen@willowandclay.example",
            phone="+447700900377",
            customer_id=None,
            seller_id=STORY_3_SELLER,
            account_status="locked",
        )

    async def test_an_active_seller_is_active(self, subject):
        assert (await subject.directory.seller_contact("sel-00001")).account_status == "active"

    async def test_an_unknown_order_or_seller_is_none_not_an_error(self, subject):
        assert await subject.directory.order_contact("114-0000000-0000000") is None
        assert await subject.directory.seller_contact("sel-99999") is None

    @pytest.mark.parametrize(
        "odd",
        [
            "",
            ".",
            "..",
            f"../sellers/{STORY_3_SELLER}",
            f"{STORY_1_ORDER}/x",
            f"{STORY_1_ORDER}?x=1",
            f"{STORY_1_ORDER}#x",
            "%2E%2E",
            "commande-é",
        ],
    )
    async def test_an_id_with_path_characters_finds_nothing_rather_than_another_record(self, subject, odd):
        assert await subject.directory.order_contact(odd) is None
        assert await subject.directory.seller_contact(odd) is None

    async def test_a_system_that_cannot_answer_raises_directory_unavailable(self, subject):
        await subject.make_unavailable()
        with pytest.raises(DirectoryUnavailable):
            await subject.directory.order_contact(STORY_2_ORDER)

    async def test_the_contact_on_file_cannot_be_changed_by_its_reader(self, subject):
        contact = await subject.directory.order_contact(STORY_1_ORDER)
        with pytest.raises(ValidationError):
            contact.email = "someone.else@example.com"


class TestHttpOrderDirectory:
    """Timeouts and 5xx are retried twice with a short backoff, then reported with the URL."""

    @pytest.fixture
    async def url(self, order_system_url: str) -> AsyncIterator[str]:
        yield order_system_url
        await set_fault(order_system_url)

    async def test_two_5xx_answers_are_retried_and_the_third_attempt_finds_the_order(self, url):
        await set_fault(url, times=2, status=503)
        async with HttpOrderDirectory(url, backoff_s=0.01) as directory:
            assert (await directory.order_contact(STORY_2_ORDER)).customer_id == "cust-2002"

    async def test_three_5xx_answers_make_the_directory_unavailable_naming_the_url(self, url):
        await set_fault(url, times=3, status=502)
        async with HttpOrderDirectory(url, backoff_s=0.01) as directory:
            with pytest.raises(DirectoryUnavailable, match=f"{url}/sellers/{STORY_3_SELLER}.*HTTP 502 after 3"):
                await directory.seller_contact(STORY_3_SELLER)

    async def test_a_slow_answer_times_out_and_the_retry_gets_the_order(self, url):
        await set_fault(url, times=1, delay_s=1.0)
        async with HttpOrderDirectory(url, timeout_s=0.2, backoff_s=0.01) as directory:
            assert (await directory.order_contact(STORY_1_ORDER)).email == "tom.ellis@example.com"

    async def test_three_slow_answers_are_reported_as_a_timeout(self, url):
        await set_fault(url, times=3, delay_s=1.0)
        async with HttpOrderDirectory(url, timeout_s=0.2, backoff_s=0.01) as directory:
            with pytest.raises(DirectoryUnavailable, match="ReadTimeout.*after 3 attempts"):
                await directory.order_contact(STORY_1_ORDER)

    async def test_a_system_that_is_not_running_is_unavailable_not_unknown(self):
        url = f"http://127.0.0.1:{free_port()}"
        async with HttpOrderDirectory(url, backoff_s=0.01) as directory:
            with pytest.raises(DirectoryUnavailable, match=f"order system at {url}/orders/.*ConnectError"):
                await directory.order_contact(STORY_2_ORDER)

    async def test_the_base_url_may_end_with_a_slash(self, url):
        async with HttpOrderDirectory(url + "/") as directory:
            assert await directory.order_contact(STORY_2_ORDER) is not None
