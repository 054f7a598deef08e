"""While the store is away, a case its customer read a moment ago is still shown, marked stale; a
case this replica never read is a clear 503 with Retry-After (issue 21: "reads that can be served
from memory are served")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from services.intake.projections import CaseViews
from services.kernel import auth
from services.kernel.outage import STALE_WARNING
from tests.integration.intake.conftest import running_intake
from tests.integration.intake.test_intake_api import driver_complaint
from tests.integration.support import wait_for


class StoreLink:
    """A TCP relay between one intake and the real store: cut, the store is away for that intake
    alone (its connections broken, new ones refused), while every other test's store serves on."""

    def __init__(self, store_url: str) -> None:
        parts = urlsplit(store_url)
        self.target, self.query = (parts.hostname or "127.0.0.1", parts.port or 27017), parts.query
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> StoreLink:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"mongodb://127.0.0.1:{port}/" + (f"?{self.query}" if self.query else "")

    def cut(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()

    async def _relay(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        store_in, store_out = await asyncio.open_connection(*self.target)
        self._writers |= {client_out, store_out}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(client_in, store_out), pipe(store_in, client_out))


@contextlib.asynccontextmanager
async def intake_behind(link: StoreLink, intake_config) -> AsyncIterator:
    config = await intake_config(
        mongodb_url=link.url, store_request_timeout_s=1.0, mongodb_server_selection_timeout_ms=500
    )
    async with running_intake(config) as intake:
        yield intake


async def test_a_case_read_before_the_store_went_away_is_shown_from_memory_and_marked_stale(intake_config, settings):
    async with StoreLink(settings.mongodb_url) as link, intake_behind(link, intake_config) as intake:
        read = (await intake.post("/api/complaints", json=driver_complaint())).json()
        unread = (await intake.post("/api/complaints", json=driver_complaint(description="Another"))).json()
        path = f"/api/complaints/{read['complaint_id']}?token={read['access_token']}"
        before = await wait_for(lambda: _ok(intake.get(path)))

        link.cut()
        during = await intake.get(path)
        never_read = await intake.get(f"/api/complaints/{unread['complaint_id']}?token={unread['access_token']}")

    assert during.status_code == 200, during.text
    assert _case(during) == _case(before), "the case as it was last read"
    assert during.headers["Warning"] == STALE_WARNING
    assert "Warning" not in before.headers
    assert never_read.status_code == 503 and never_read.headers["Retry-After"], never_read.text
    assert never_read.json()["type"] == "/problems/store-unavailable"


async def test_a_logged_in_customer_still_sees_their_case_while_the_store_is_away(intake_config, settings):
    async with StoreLink(settings.mongodb_url) as link, intake_behind(link, intake_config) as intake:
        token = auth.sign({"sub": "cust-away-1", "role": "customer"}, intake.config.signing_key, timedelta(minutes=5))
        login = {"Authorization": f"Bearer {token}"}
        filed = (await intake.post("/api/complaints", json=driver_complaint(), headers=login)).json()
        path = f"/api/complaints/{filed['complaint_id']}"
        before = await wait_for(lambda: _ok(intake.get(path, headers=login)))

        link.cut()
        during = await intake.get(path, headers=login)

    assert during.status_code == 200, "whose case it is was known without the store"
    assert _case(during) == _case(before) and during.headers["Warning"] == STALE_WARNING


async def test_a_read_for_a_decision_never_takes_the_remembered_copy(settings, db):
    """Only an answer to a person may be stale: a read-modify-write or an access check that took the
    copy could lose an update or let a team see a case moved away (ADR 0037)."""
    async with StoreLink(settings.mongodb_url) as link:
        client = AsyncMongoClient(link.url, serverSelectionTimeoutMS=500, tz_aware=True)
        views = CaseViews(client[db.name])
        await views.views.insert_one({"_id": "c-away-1", "status": "open"})
        assert await views.shown("c-away-1") == {"_id": "c-away-1", "status": "open"}

        link.cut()
        assert await views.shown("c-away-1") == {"_id": "c-away-1", "status": "open"}
        with pytest.raises(PyMongoError):
            await views.get("c-away-1")
        await client.close()


def _case(answer) -> dict:
    return {k: v for k, v in answer.json().items() if k != "next_step"}  # next_step: from the clock


async def _ok(answer):
    response = await answer
    return response if response.status_code == 200 else None
