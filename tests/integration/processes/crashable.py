"""A real service process for the crash tests, with one place where it can be told to stop dead.

    python -m tests.integration.processes.crashable relay|consumer|notify

Settings come from the environment (the kernel's, plus TEST_TOPIC, TEST_MARKER, TEST_HANG_AT and
TEST_REFUSE, the notes whose handler raises;
with TEST_HTTP_PORT, the process serves the kernel's health routes there, as a service does).
The process writes TEST_MARKER and then hangs at the named point (for notify: in the call of the
callback TEST_HANG_FOR), so that the test can kill it with SIGKILL exactly there:
- relay: after the broker acknowledged the publish, before the pending entry is cleared;
- consumer: inside the handler, after its append, before the inbox record and the offset commit;
- notify (the real notify service, its settings from the environment too), at one step of a call
  attempt: ``claim`` (before the claim), ``provider`` (claimed, before the provider is asked),
  ``record`` (the provider placed the call, before CallPlaced), ``recorded`` (after CallPlaced,
  before the inbox record and the offset commit) — the crash windows of docs/adr/0015.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
from contextlib import asynccontextmanager

from services.kernel.eventstore import Cause
from services.kernel.outbox import OutboxRelay
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.kernel.startup import run, serve, serve_http
from services.kernel.web import service_app
from services.notify import app as notify_app
from services.notify.adapters.telephony import TwilioStyleTelephony
from services.notify.application import Notify
from services.notify.claims import Claims, idempotency_key
from tests.integration.story_events import NoteAdded, NoteCounted, registry


async def hang_here() -> None:
    pathlib.Path(os.environ["TEST_MARKER"]).write_text(str(os.getpid()))
    await asyncio.Event().wait()


def hang_after_publish() -> None:
    publish = OutboxRelay.publish

    async def publish_then_hang(self, commits):
        done = await publish(self, commits)
        if done:
            await hang_here()
        return done

    OutboxRelay.publish = publish_then_hang


def hang_in_a_call_attempt(point: str, callback_id: str) -> None:
    """Hang in the first attempt of ``callback_id``'s call only: the shared topics carry other
    tests' dispatches too, and this process dials them as notify would."""
    claim, place_call, place = Claims.claim, TwilioStyleTelephony.place_call, Notify._place_call
    effect = f"call:{callback_id}:1"

    async def claim_after_hanging(self, claimed):
        if claimed == effect:
            await hang_here()
        return await claim(self, claimed)

    async def place_call_then_hang(self, customer, agent_endpoint, key):
        if key == idempotency_key(effect) and point == "provider":
            await hang_here()
        sid = await place_call(self, customer, agent_endpoint, key)
        if key == idempotency_key(effect):
            await hang_here()
        return sid

    async def place_then_hang(self, dialled, *args):
        state = await place(self, dialled, *args)
        if dialled == callback_id:
            await hang_here()
        return state

    if point == "claim":
        Claims.claim = claim_after_hanging
    elif point in ("provider", "record"):
        TwilioStyleTelephony.place_call = place_call_then_hang
    elif point == "recorded":
        Notify._place_call = place_then_hang


async def main(role: str) -> None:
    settings, topic = KernelSettings(), os.environ["TEST_TOPIC"]
    hang_at = os.environ.get("TEST_HANG_AT")
    if role == "relay" and hang_at:
        hang_after_publish()
    runtime = Runtime.create(settings, registry, topic)
    if role == "consumer":
        calls = runtime.store.db["handler_calls"]

        async def count(event: NoteAdded, envelope) -> None:
            if str(event.n) in os.environ.get("TEST_REFUSE", "").split(","):
                raise ValueError(f"note {event.n} refused")  # dead-lettered
            await calls.insert_one({"n": event.n, "pid": os.getpid()})
            await runtime.store.append(
                f"counted-{event.complaint_id}-{event.n}",
                0,
                [NoteCounted(complaint_id=event.complaint_id, n=event.n)],
                Cause.of_event(envelope, "count"),
            )
            if hang_at and event.n == int(hang_at):
                await hang_here()

        runtime.consumer.subscribe(topic, os.environ["TEST_GROUP"], {NoteAdded: count})
    if os.environ.get("TEST_HTTP_PORT"):
        return await serve_http(
            health_app(runtime), "127.0.0.1", int(os.environ["TEST_HTTP_PORT"]), settings.stop_timeout_s
        )
    await serve(runtime)


def health_app(runtime: Runtime):
    """The kernel's HTTP app with nothing but its health routes; its lifespan runs ``runtime``."""

    @asynccontextmanager
    async def lifespan(app):
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return service_app("crashable", "A crash-test service.", lifespan, runtime, 1024)


if __name__ == "__main__":
    if sys.argv[1] == "notify":
        if os.environ.get("TEST_HANG_AT"):
            hang_in_a_call_attempt(os.environ["TEST_HANG_AT"], os.environ["TEST_HANG_FOR"])
        notify_app.main()
    else:
        run(KernelSettings(), lambda: main(sys.argv[1]))
