"""A Twilio-style telephony API over httpx: place a call connecting agent and complainant, send an SMS.

The shape is Twilio's REST API (``POST /2010-04-01/Accounts/{sid}/Calls.json`` and
``Messages.json``, form-encoded, HTTP basic auth with the account sid and token), so the real
provider or the simulator in ``infra/simulators/telephony.py`` answers it, configured by URL.
Every request carries an idempotency key fixed by the caller (``Idempotency-Key``, and the same as
``I-Twilio-Idempotency-Token``): the provider answers a repeat with the first result instead of
calling or texting again, which makes a retry after a lost answer, a crash or a race safe
(docs/adr/0015). A request that got no answer is asked once more, with the same key.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import httpx

from services.kernel.outbound import client
from services.kernel.resilience import RetriesExhausted, Retryable, RetryPolicy, retrying

ONE_MORE_TRY = RetryPolicy(attempts=2, base_s=0.2, cap_s=0.2)  # two 5 s tries: well inside CLAIM_EXPIRY_S


class TelephonyFailed(Exception):
    """The provider refused or could not be reached; ``reason`` says which, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TwilioStyleTelephony:
    def __init__(
        self, base_url: str, account_sid: str, auth_token: str, caller_id: str, timeout_s: float = 5.0
    ) -> None:
        self.caller_id = caller_id
        self._client = client(base_url, timeout_s, auth=(account_sid, auth_token))
        self._prefix = f"/2010-04-01/Accounts/{account_sid}"

    async def place_call(self, customer: str, agent_endpoint: str, idempotency_key: str) -> str:
        """Ring ``customer``; when they answer, dial ``agent_endpoint`` (e.g. ``client:agt-0042``).
        Returns the provider's call sid; the same ``idempotency_key`` never rings twice."""
        kind, _, who = agent_endpoint.partition(":")
        noun = f"<Client>{escape(who)}</Client>" if kind == "client" else f"<Number>{escape(agent_endpoint)}</Number>"
        twiml = f"<Response><Dial>{noun}</Dial></Response>"
        return await self._post("Calls.json", {"To": customer, "From": self.caller_id, "Twiml": twiml}, idempotency_key)

    async def send_sms(self, to: str, body: str, idempotency_key: str) -> str:
        return await self._post("Messages.json", {"To": to, "From": self.caller_id, "Body": body}, idempotency_key)

    async def _post(self, resource: str, form: dict[str, str], idempotency_key: str) -> str:
        headers = {"Idempotency-Key": idempotency_key, "I-Twilio-Idempotency-Token": idempotency_key}

        async def post() -> httpx.Response:
            try:
                return await self._client.post(f"{self._prefix}/{resource}", data=form, headers=headers)
            except httpx.HTTPError as exc:
                # A timed-out request may have reached the provider: asking again with the same key
                # learns its fate instead of leaving it to a new attempt (a second call). Not after
                # an error answer: a provider replays only successful answers to a key (ADR 0035).
                raise Retryable(f"telephony provider unreachable: {type(exc).__name__}: {exc}") from None

        try:
            answer, _ = await retrying(post, ONE_MORE_TRY)
        except RetriesExhausted as exc:
            raise TelephonyFailed(exc.last.reason) from None
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("message", answer.text)
            except ValueError:
                detail = answer.text
            raise TelephonyFailed(f"telephony provider answered {answer.status_code}: {detail}"[:2000])
        body = answer.json()
        if body.get("status") in ("failed", "busy", "no-answer", "canceled", "undelivered"):
            raise TelephonyFailed(body["status"])
        return body["sid"]

    async def aclose(self) -> None:
        await self._client.aclose()
