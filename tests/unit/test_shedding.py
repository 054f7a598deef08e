"""Shedding load (kernel/shedding.py): a write that cannot start in time gets 503 with Retry-After
and a problem body, at once, instead of waiting until the client gives up; reads are never shed."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.kernel.shedding import ShedLoad


def busy_app(release: asyncio.Event) -> Starlette:
    async def file(request):
        await release.wait()  # a write held up in the store
        return JSONResponse({"filed": True}, status_code=201)

    async def read(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/complaints", file, methods=["POST"]), Route("/complaints", read)])
    app.add_middleware(ShedLoad, max_in_flight=1, queue_timeout_s=0.05, retry_after_s=2)
    return app


async def test_a_write_beyond_the_limit_is_refused_with_retry_after_and_reads_still_answer():
    release = asyncio.Event()
    transport = httpx.ASGITransport(app=busy_app(release))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        first = asyncio.create_task(client.post("/complaints", json={}))
        await asyncio.sleep(0.01)  # the first write holds the only slot

        shed = await client.post("/complaints", json={})
        read = await client.get("/complaints")
        release.set()
        accepted = await first
        after = await client.post("/complaints", json={})

    assert shed.status_code == 503 and shed.headers["retry-after"] == "2"
    assert shed.headers["content-type"] == "application/problem+json"
    assert shed.json()["status"] == 503 and "nothing was recorded" in shed.json()["detail"]
    assert read.status_code == 200, "reads are never shed"
    assert accepted.status_code == after.status_code == 201, "the slot is free again once the write ends"
