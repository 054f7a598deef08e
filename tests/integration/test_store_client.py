"""The store client a service builds: never more commands in flight than MONGODB_MAX_POOL_SIZE,
however many tasks ask at once (ADR 0038: FerretDB on SQLite deadlocks a database that gets 100
updates at once, and every task of a busy service may want the store at the same moment)."""

from __future__ import annotations

import asyncio

from pymongo import AsyncMongoClient, monitoring

from services.kernel.runtime import store_options


class InFlight(monitoring.ConnectionPoolListener):
    """The most connections checked out of the pool at once: the commands in flight."""

    def __init__(self) -> None:
        self.now = self.most = 0

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        self.now -= 1

    # the pool's other events: nothing to count
    def pool_created(self, event) -> None: ...
    def pool_ready(self, event) -> None: ...
    def pool_cleared(self, event) -> None: ...
    def pool_closed(self, event) -> None: ...
    def connection_created(self, event) -> None: ...
    def connection_ready(self, event) -> None: ...
    def connection_closed(self, event) -> None: ...
    def connection_check_out_started(self, event) -> None: ...
    def connection_check_out_failed(self, event) -> None: ...


async def test_a_service_never_has_more_store_commands_in_flight_than_its_pool_allows(settings):
    in_flight = InFlight()
    options = store_options(settings.model_copy(update={"mongodb_max_pool_size": 5}))
    client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_url, event_listeners=[in_flight], **options)
    try:
        db = client[settings.database_name]
        await db["pool_check"].insert_many([{"_id": n, "v": 0} for n in range(200)])

        await asyncio.gather(*(db["pool_check"].update_one({"_id": n}, {"$set": {"v": 1}}) for n in range(200)))

        assert await db["pool_check"].count_documents({"v": 1}) == 200, "every one done, in turn"
    finally:
        await client.close()
    assert in_flight.most == 5, f"{in_flight.most} at once"


def test_the_default_pool_keeps_two_replicas_of_a_service_below_half_ferretdbs_connections(settings):
    assert 2 * store_options(settings)["maxPoolSize"] < 50
