"""The courier: delivers queued messages by SMTP or SMS, once each, retrying with backoff.

Before handing a message over it checks the address's ledger: a message already recorded as
sent is never handed over again (after a crash, a rebuild, or a second replica). An email marks
its point of no return (``committed``) just before the SMTP end of data; a courier that finds
the mark after a crash records the message as sent instead of sending it twice; the mark is an
insert, so of two couriers only one passes that point (the other drops its connection before the
end of data). An SMS is claimed before the provider is called and carries an idempotency key, so a
second courier, or a retry after a crash, gets the first SMS back instead of sending another
(docs/adr/0015). After the policy's last attempt it records NotificationFailed; nothing is
dropped without a trace. One courier at a time holds the ``courier`` lease, but a round that
outlasts the lease can overlap the next holder's: the claims, not the lease, keep one send.

A job whose outcome it recorded is taken off the list by the log follower, which applies that
record (projections.Outgoing): the courier only remembers not to look at it again meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from contracts.notify import MessageQueued
from services.kernel.commands import current
from services.kernel.eventstore import EventStore
from services.kernel.lease import Lease
from services.kernel.sealed_codes import CannotOpen, open_sealed
from services.notify.adapters.smtp import SendFailed, SmtpMailer
from services.notify.adapters.telephony import TelephonyFailed, TwilioStyleTelephony
from services.notify.application import Notify
from services.notify.claims import Claims, idempotency_key
from services.notify.ledger import LEDGER, ledger_stream
from services.notify.messages import Templates, build_email
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)


class ClaimedElsewhere(Exception):
    """Another courier is sending this message right now: this one stands back."""


class Courier:
    def __init__(
        self,
        store: EventStore,
        notify: Notify,
        templates: Templates,
        mailer: SmtpMailer,
        telephony: TwilioStyleTelephony,
        settings: NotifySettings,
        wake: asyncio.Event,
    ) -> None:
        self.store, self.notify, self.templates, self.mailer = store, notify, templates, mailer
        self.telephony, self.settings, self.wake = telephony, settings, wake
        self.jobs = store.db["outgoing"]
        #: Messages past their point of no return (see adapters/smtp.py). Kept after the record: a
        #: courier that loaded the message before the record must still find the mark taken.
        self.committed = store.db["committed"]
        self.claims = Claims(store.db, timedelta(seconds=settings.claim_expiry_s))
        #: Held while delivering (run by kernel/periodic.py); its owner marks what it committed.
        self.lease = Lease(store.db, "courier", settings.lease_ttl_s)
        self._stopping = False
        #: Jobs whose outcome this courier recorded, until the follower has taken them off the list.
        self._recorded: set[str] = set()

    def halt(self) -> None:
        """Stop a round between two messages: at shutdown, the rest wait for the next replica."""
        self._stopping = True

    async def deliver_due(self) -> float:
        """Deliver every due job; returns how long until the next one is due (at most 0.5 s)."""
        now, pause = datetime.now(UTC), 0.5
        jobs = await self.jobs.find({}).to_list()
        self._recorded &= {job["_id"] for job in jobs}  # the others are off the list
        for job in jobs:
            if self._stopping:
                break
            if job["_id"] in self._recorded:
                continue  # its outcome is recorded: the follower takes it off the list
            if job["due_at"] <= now:
                await self.deliver(job)
            else:
                pause = min(pause, (job["due_at"] - now).total_seconds())
        return max(pause, 0.01)

    async def deliver(self, job: dict) -> None:
        queued = MessageQueued.model_validate(job["queued"])
        ledger, _ = await current(self.store, LEDGER, ledger_stream(queued.address))
        if queued.message_id in ledger.done:
            await self.jobs.delete_one({"_id": job["_id"]})  # sent (or given up) before: never again
            return
        attempts = job["attempts"] + 1
        # Only an email marks its point of no return (an SMS is claimed instead): no lookup for one.
        if queued.channel != "sms" and await self.committed.find_one({"_id": queued.message_id}) is not None:
            # A courier died past the point of no return: the server has it. Sending it again
            # would be the duplicate; recording it as sent is what is left to do.
            log.warning(
                "message past its commit point when the courier stopped: recorded as sent",
                extra={"fields": {"message_id": queued.message_id}},
            )
            return await self._sent(job, queued, attempts)
        try:
            await self.hand_over(queued)
        except ClaimedElsewhere:
            # Looked at again when its holder's claim would have expired, not at every round.
            log.info("another courier is sending this message", extra={"fields": {"message_id": queued.message_id}})
            await self.jobs.update_one(
                {"_id": job["_id"]}, {"$set": {"due_at": datetime.now(UTC) + self.claims.expiry}}
            )
            return
        except (SendFailed, TelephonyFailed) as exc:
            # Only our own mark: another courier's means its end of data went out.
            await self.committed.delete_one({"_id": queued.message_id, "by": self.lease.owner})
            await self.claims.release(f"sms:{queued.message_id}")
            return await self._failed(job, queued, attempts, exc)
        await self._sent(job, queued, attempts)

    async def _sent(self, job: dict, queued: MessageQueued, attempts: int) -> None:
        await self.notify.sent(queued.address, queued.message_id, attempts)
        self._recorded.add(job["_id"])

    async def _failed(self, job: dict, queued: MessageQueued, attempts: int, exc: SendFailed | TelephonyFailed) -> None:
        if attempts >= self.settings.send_attempts or getattr(exc, "permanent", False):
            await self.notify.failed(queued.address, queued.message_id, attempts, exc.reason)
            self._recorded.add(job["_id"])
            return
        wait = min(self.settings.send_backoff_max_s, self.settings.send_backoff_s * 2 ** (attempts - 1))
        log.warning(
            "send failed; will retry",
            extra={
                "fields": {
                    "message_id": queued.message_id,
                    "attempt": attempts,
                    "retry_in_s": wait,
                    "error": exc.reason,
                }
            },
        )
        await self.jobs.update_one(
            {"_id": job["_id"]},
            {
                "$set": {
                    "attempts": attempts,
                    "due_at": datetime.now(UTC) + timedelta(seconds=wait),
                    "last_error": exc.reason,
                }
            },
        )

    def _opened(self, queued: MessageQueued) -> dict:
        """The message's variables, a sealed one-time code opened: in memory only, for this send."""
        if "code_sealed" not in queued.context:
            return queued.context
        context = {k: v for k, v in queued.context.items() if k != "code_sealed"}
        keys = [k for k in self.settings.code_opening_keys.split(",") if k.strip()]
        try:
            context["code"] = open_sealed(queued.context["code_sealed"], context.get("verification_id", ""), keys)
        except (CannotOpen, ValueError):
            raise SendFailed("the one-time code cannot be opened with CODE_OPENING_KEYS", permanent=True) from None
        return context

    async def _commit_point(self, message_id: str) -> None:
        try:
            await self.committed.insert_one({"_id": message_id, "at": datetime.now(UTC), "by": self.lease.owner})
        except DuplicateKeyError:
            raise ClaimedElsewhere(message_id) from None  # the other courier's end of data, not ours

    async def hand_over(self, queued: MessageQueued) -> None:
        rendered = self.templates.render(queued.template, self._opened(queued))
        if queued.channel == "sms":
            if rendered.sms is None:
                raise SendFailed(f"template {queued.template} has no SMS part", permanent=True)
            effect = f"sms:{queued.message_id}"
            if not await self.claims.claim(effect):
                raise ClaimedElsewhere(queued.message_id)
            await self.telephony.send_sms(queued.address, rendered.sms, idempotency_key(effect))
            return
        reply_to = self.notify.reply_address(queued.complaint_id) if queued.complaint_id else None
        await self.mailer.send(
            build_email(
                rendered,
                message_id=queued.message_id,
                sender=self.settings.mail_from,
                sender_name=self.settings.mail_from_name,
                to=queued.address,
                reply_to=reply_to,
                in_reply_to=queued.in_reply_to,
            ),
            lambda: self._commit_point(queued.message_id),
        )
