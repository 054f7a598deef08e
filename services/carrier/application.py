"""The carrier service's use cases: look up an order's packages, ask the carriers, record what is news.

Each loads a stream, asks the outside world (order system, carriers) first, then decides with the
pure domain and appends; the kernel's causes make a repeat append nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from contracts.carrier import Carrier, CheckTrigger, FailureCode, PackageRef
from contracts.envelope import Event
from contracts.intake import ComplaintFiled
from contracts.routing import ComplaintResolved
from services.carrier.adapters.orders import OrderBook, OrderSystemUnavailable, ShippedOrder
from services.carrier.domain import (
    ALERTS,
    UNRECOGNISED,
    WATCH,
    EndWatch,
    Failed,
    NotWatched,
    RaiseAlert,
    RecordCheck,
    RecordOrderLookupFailed,
    Tracked,
    TrackingReport,
    Watch,
    WatchShipments,
    alerts_stream,
    guess_carrier,
    normalize_tracking_number,
    watch_stream,
)
from services.kernel.commands import current, execute
from services.kernel.eventlog import EventLog
from services.kernel.eventstore import Cause

Check = Callable[[PackageRef], Awaitable[Tracked | Failed]]


class UnknownOrder(LookupError):
    """The order system has no such order."""


class NotAPackageOfTheOrder(LookupError):
    """The tracking number is not one of the order's packages."""


class Shipments:
    """The use cases, on the service's store, the order system and the carriers (``check``)."""

    def __init__(self, store: EventLog, orders: OrderBook, check: Check) -> None:
        self.store, self.orders, self.check = store, orders, check

    async def complaint_filed(self, filed: ComplaintFiled, cause: Cause) -> None:
        """A complaint about an order or tracking numbers: every package's status and a summary."""
        if filed.order_id or filed.tracking_numbers:
            await self.track(filed.complaint_id, filed.order_id, filed.tracking_numbers, CheckTrigger.COMPLAINT, cause)

    async def recheck(self, complaint_id: str, trigger: CheckTrigger, cause: Cause) -> Watch:
        """Ask again (an agent, or the periodic re-check); news only is appended."""
        watch = await self.watch(complaint_id)
        if watch.complaint_id is None:
            raise NotWatched(complaint_id)
        numbers = [] if watch.order_id else list(watch.packages)
        return await self.track(complaint_id, watch.order_id, numbers, trigger, cause)

    async def track(
        self, complaint_id: str, order_id: str | None, numbers: list[str], trigger: CheckTrigger, cause: Cause
    ) -> Watch:
        watch = await self.watch(complaint_id)
        if not watch.watching:
            try:
                packages, items_total = await self._packages(order_id, numbers)
            except (UnknownOrder, OrderSystemUnavailable) as exc:
                return await self._lookup_failed(complaint_id, order_id or "", exc, trigger, cause)
            watch = (
                await execute(
                    self.store,
                    WATCH,
                    watch_stream(complaint_id),
                    WatchShipments(
                        complaint_id=complaint_id, order_id=order_id, packages=packages, items_total=items_total
                    ),
                    _step(cause, "watch"),
                )
            ).state
        targets = watch.in_transit() if trigger is CheckTrigger.RECHECK else list(watch.packages.values())
        outcomes = await asyncio.gather(*(self.check(p.ref) for p in targets))
        return (
            await execute(
                self.store,
                WATCH,
                watch_stream(complaint_id),
                RecordCheck(complaint_id=complaint_id, trigger=trigger, outcomes=tuple(outcomes)),
                _step(cause, "check"),
            )
        ).state

    async def end_watch(self, resolved: ComplaintResolved, cause: Cause) -> None:
        """A resolved complaint's packages are not re-checked any more."""
        await execute(self.store, WATCH, watch_stream(resolved.complaint_id), EndWatch(), cause)

    async def alert(
        self, order_id: str, carrier: Carrier, tracking_number: str, report: TrackingReport, cause: Cause
    ) -> list[Event]:
        """A carrier pushed news about a package: an exception alerts the order (once per news)."""
        order = await self.orders.order(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        number = normalize_tracking_number(tracking_number)
        package = next((p for p in order.packages if normalize_tracking_number(p.tracking_number) == number), None)
        if package is None:
            raise NotAPackageOfTheOrder(tracking_number)
        outcome = await execute(
            self.store,
            ALERTS,
            alerts_stream(order_id),
            RaiseAlert(
                order_id=order_id, customer_id=order.customer_id, carrier=carrier, package=package, report=report
            ),
            cause,
        )
        return [self.store.registry.decode(e.type, e.data) for e in outcome.commit.events] if outcome.commit else []

    async def watch(self, complaint_id: str) -> Watch:
        return (await current(self.store, WATCH, watch_stream(complaint_id)))[0]

    async def _packages(self, order_id: str | None, numbers: list[str]) -> tuple[tuple[PackageRef, ...], int]:
        if order_id:
            order: ShippedOrder | None = await self.orders.order(order_id)
            if order is None:
                raise UnknownOrder(order_id)
            return order.packages, order.items_total
        # Tracking numbers alone: the carrier is guessed from the number's format when checked.
        packages = tuple(
            PackageRef(carrier=_carrier_of(n), tracking_number=normalize_tracking_number(n))
            for n in dict.fromkeys(numbers)
        )
        return packages, 0

    async def _lookup_failed(
        self, complaint_id: str, order_id: str, exc: Exception, trigger: CheckTrigger, cause: Cause
    ) -> Watch:
        if isinstance(exc, UnknownOrder):
            code, reason, attempts = FailureCode.ORDER_UNKNOWN, f"the order system has no order {order_id!r}", 1
        else:
            assert isinstance(exc, OrderSystemUnavailable)
            code, reason, attempts = FailureCode.ORDER_SYSTEM_UNAVAILABLE, str(exc), exc.attempts
        return (
            await execute(
                self.store,
                WATCH,
                watch_stream(complaint_id),
                RecordOrderLookupFailed(
                    complaint_id=complaint_id,
                    order_id=order_id,
                    code=code,
                    reason=reason[:500],
                    attempts=attempts,
                    trigger=trigger,
                ),
                _step(cause, "lookup"),
            )
        ).state


def _carrier_of(number: str) -> str:
    guessed = guess_carrier(normalize_tracking_number(number))
    return guessed.value if guessed else UNRECOGNISED


def _step(cause: Cause, step: str) -> Cause:
    """The cause of one step of a use case: each step's commit gets its own deterministic id."""
    return dataclasses.replace(cause, handler=f"{cause.handler}:{step}")
