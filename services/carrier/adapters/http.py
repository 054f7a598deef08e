"""What every carrier adapter shares: bounded JSON reads (kernel/outbound.py), the failure kinds, OAuth tokens.

A carrier's answer is read with a size limit (a runaway or hostile answer must not fill memory)
and sorted into: an answer to read, ``Retryable`` (429, 5xx, timeouts, cut connections: worth
another try), ``NotFound``, ``Refused`` (our request or credentials are wrong: retrying will not
help) and ``Unreadable`` (malformed or oversized JSON, or a shape we do not know).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, Protocol

from contracts.carrier import Carrier
from services.carrier.domain import TrackingReport
from services.kernel import outbound


class NotFound(Exception):
    """The carrier does not know this tracking number."""


class Refused(Exception):
    """The carrier refused our request (4xx other than 404/429): fix the request or credentials."""


class Unreadable(Exception):
    """The carrier answered something we cannot read: malformed or oversized JSON, or an unknown shape."""


class CarrierAdapter(Protocol):
    """One carrier's tracking API: the normalized status of a tracking number.

    Raises ``Retryable``, ``NotFound``, ``Refused`` or ``Unreadable``; never anything else.
    """

    carrier: Carrier

    async def track(self, tracking_number: str) -> TrackingReport: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Unreadable(f"malformed JSON ({exc.msg} at byte {getattr(exc, 'pos', '?')})") from None


class CarrierHttp:
    """An httpx client for one carrier: timeouts, a size limit, and the failure kinds above."""

    def __init__(self, carrier: Carrier, base_url: str, timeout_s: float, max_body_bytes: int) -> None:
        self.carrier, self.max_body_bytes = carrier, max_body_bytes
        self.client = outbound.client(base_url, timeout_s)

    async def send(self, method: str, path: str, **kwargs: Any) -> Answer:
        """The answer, or ``Retryable`` for 429/5xx/timeouts/transport failures."""
        async with outbound.request(self.client, method, path, self.carrier.value, **kwargs) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_body_bytes:
                    raise Unreadable(f"answer larger than {self.max_body_bytes} bytes")
            return Answer(response.status_code, bytes(body))

    async def aclose(self) -> None:
        await self.client.aclose()


class ClientCredentials:
    """An OAuth 2.0 client-credentials token, fetched when needed and reused until shortly before expiry.

    ``style`` is how the carrier wants the credentials: ``form`` (client_id and client_secret in
    the form, FedEx), ``basic`` (HTTP Basic, UPS) or ``json`` (a JSON body, USPS).
    """

    EARLY_S = 60.0  # renew a minute early: a token that expires in flight fails the call

    def __init__(
        self,
        http: CarrierHttp,
        path: str,
        client_id: str,
        client_secret: str,
        style: Literal["form", "basic", "json"],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http, self.path, self.style = http, path, style
        self.client_id, self.client_secret = client_id, client_secret
        self.clock, self._token, self._expires = clock, "", 0.0

    async def header(self) -> dict[str, str]:
        if not self._token or self.clock() >= self._expires:
            await self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    def forget(self) -> None:
        """Drop the token (the carrier said it is no longer valid)."""
        self._token = ""

    async def _fetch(self) -> None:
        grant = {"grant_type": "client_credentials"}
        if self.style == "basic":
            kwargs: dict[str, Any] = {"data": grant, "auth": (self.client_id, self.client_secret)}
        else:
            body = {**grant, "client_id": self.client_id, "client_secret": self.client_secret}
            kwargs = {"json": body} if self.style == "json" else {"data": body}
        answer = await self.http.send("POST", self.path, **kwargs)
        if answer.status != 200:
            raise Refused(f"{self.http.carrier.value} refused our OAuth credentials (HTTP {answer.status})")
        token = answer.json()
        try:
            self._token = str(token["access_token"])
            self._expires = self.clock() + float(token.get("expires_in", 3600)) - self.EARLY_S
        except (KeyError, TypeError, ValueError):
            raise Unreadable(f"{self.http.carrier.value} OAuth answer has no usable access_token") from None


def parse_time(value: str | None, default_offset: timezone = UTC) -> datetime | None:
    """An ISO 8601 time; one without an offset is read in ``default_offset``."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unreadable(f"not an ISO 8601 time: {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=default_offset)


def offset(value: str | None) -> timezone:
    """A UTC offset such as ``-05:00`` or ``+0100`` (UTC when absent or unreadable)."""
    if not value:
        return UTC
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("+-").replace(":", "")
    if not digits.isdigit() or len(digits) not in (2, 4):
        return UTC
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
