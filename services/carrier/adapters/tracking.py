"""Every carrier behind one call, made safe: the format check, a short cache, a rate limit, retries,
and a circuit breaker per carrier. Whatever a carrier does, ``check`` returns an outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from contracts.carrier import Carrier, FailureCode, PackageRef
from services.carrier.adapters import auspost, fedex, ups, usps
from services.carrier.adapters.http import CarrierAdapter, NotFound, Refused, Unreadable
from services.carrier.domain import (
    UNRECOGNISED,
    Failed,
    Tracked,
    TrackingReport,
    format_problem,
    normalize_tracking_number,
    supported_carrier,
    unreadable,
)
from services.kernel.ratelimit import RateLimit
from services.kernel.resilience import (
    CircuitBreaker,
    CircuitOpen,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    TtlCache,
    retrying,
)

log = logging.getLogger(__name__)

#: How each carrier's own tracking JSON is read (also for what its webhooks push).
READERS: dict[Carrier, Callable[[Any], TrackingReport]] = {
    Carrier.FEDEX: fedex.parse,
    Carrier.UPS: ups.parse,
    Carrier.USPS: usps.parse,
    Carrier.AUSPOST: auspost.parse,
}

FAILURE_OF_KIND = {"rate_limited": FailureCode.RATE_LIMITED, "timeout": FailureCode.TIMEOUT}


class CarrierGateway:
    """Asks the right carrier about a package, within the limits that keep both sides healthy."""

    def __init__(
        self,
        adapters: Mapping[Carrier, CarrierAdapter],
        policy: RetryPolicy,
        breaker_failures: int,
        breaker_reset_s: float,
        cache_ttl_s: float,
        limit: RateLimit,
        rate_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.adapters, self.policy, self.rate_wait_s = dict(adapters), policy, rate_wait_s
        self.clock, self.sleep = clock, sleep
        self.breakers = {
            c: CircuitBreaker(c.value, breaker_failures, breaker_reset_s, lambda: self.clock()) for c in self.adapters
        }
        self.cache: TtlCache[TrackingReport] = TtlCache(cache_ttl_s)
        self.limit = limit  # per carrier, shared by the replicas (the carriers' quotas are per account)

    async def check(self, package: PackageRef) -> Tracked | Failed:
        if package.carrier == UNRECOGNISED:
            formats = ", ".join(c.value for c in self.adapters)
            return Failed(
                package=package,
                code=FailureCode.MALFORMED_TRACKING_NUMBER,
                attempts=0,
                reason=f"tracking number {package.tracking_number[:40]!r} matches no format of {formats}",
            )
        carrier = supported_carrier(package.carrier)
        if carrier is None or carrier not in self.adapters:
            known = ", ".join(c.value for c in self.adapters)
            return Failed(
                package=package,
                code=FailureCode.UNKNOWN_CARRIER,
                attempts=0,
                reason=f"carrier {package.carrier!r} is not one we track ({known})",
            )
        number = normalize_tracking_number(package.tracking_number)
        if problem := format_problem(carrier, number):
            return Failed(package=package, code=FailureCode.MALFORMED_TRACKING_NUMBER, reason=problem, attempts=0)
        if cached := self.cache.get(f"{carrier}:{number}", self.clock()):
            return Tracked(package=package, carrier=carrier, report=cached)
        return await self._ask(carrier, number, package)

    async def _ask(self, carrier: Carrier, number: str, package: PackageRef) -> Tracked | Failed:
        attempts = 0

        async def attempt() -> TrackingReport:
            nonlocal attempts
            await self._within_rate(carrier)
            self.breakers[carrier].before_call()
            attempts += 1
            return await self._call(carrier, number)

        def failed(code: FailureCode, reason: str) -> Failed:
            return Failed(package=package, code=code, reason=reason[:500], attempts=attempts)

        try:
            report, _ = await retrying(attempt, self.policy, self.sleep)
        except RetriesExhausted as exc:
            return failed(FAILURE_OF_KIND.get(exc.last.kind, FailureCode.CARRIER_UNAVAILABLE), str(exc))
        except CircuitOpen as exc:
            return failed(FailureCode.CIRCUIT_OPEN, str(exc))
        except _OverOurLimit as exc:
            return failed(FailureCode.RATE_LIMITED, str(exc))
        except NotFound as exc:
            return failed(FailureCode.NOT_FOUND, f"{carrier.value} does not know {number}: {exc}")
        except Refused as exc:
            return failed(FailureCode.CARRIER_UNAVAILABLE, str(exc))
        except Unreadable as exc:
            # Not the package's fault, and asking again would get the same answer: say "unknown".
            log.warning(
                "unreadable carrier answer; package marked unknown",
                extra={"fields": {"carrier": carrier.value, "tracking_number": number, "error": str(exc)}},
            )
            return Tracked(
                package=package, carrier=carrier, report=unreadable(f"unreadable answer from {carrier.value}: {exc}")
            )
        self.cache.put(f"{carrier}:{number}", report, self.clock())
        return Tracked(package=package, carrier=carrier, report=report)

    async def _call(self, carrier: Carrier, number: str) -> TrackingReport:
        """One request, its result told to the carrier's breaker."""
        breaker = self.breakers[carrier]
        try:
            report = await self.adapters[carrier].track(number)
        except (Retryable, Refused):
            breaker.failed()
            raise
        except (NotFound, Unreadable):
            breaker.released()
            raise
        except BaseException:
            breaker.released()  # cancelled: says nothing about the carrier
            raise
        breaker.succeeded()
        return report

    async def _within_rate(self, carrier: Carrier) -> None:
        """Wait for room under our own per-carrier limit, or give up if that takes too long."""
        wait = await self.limit.hit(carrier.value)
        if wait is None:
            return
        if wait > self.rate_wait_s:
            raise _OverOurLimit(
                f"our limit of {self.limit.limit} requests per minute to {carrier.value} "
                f"is reached; room again in {wait} s"
            )
        await self.sleep(wait)
        if await self.limit.hit(carrier.value) is not None:
            raise _OverOurLimit(f"our limit of {self.limit.limit} requests per minute to {carrier.value} is reached")

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()


class _OverOurLimit(Exception):
    """Our own rate limit towards a carrier is spent for longer than we may wait."""
