"""Intake's use cases: each loads, decides with the pure domain, and appends; no HTTP, no Kafka here."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.carrier import ShipmentExceptionDetected
from contracts.intake import Category, Channel, Complainant
from services.intake.adapters.email import InboundEmail
from services.intake.adapters.orders import ContactOnFile, OrderDirectory
from services.intake.adapters.social import SocialPost
from services.intake.domain import (
    COMPLAINT,
    ORDER_CASES,
    VERIFICATION,
    AnswerClosure,
    Callback,
    CancelCallback,
    CloseCaseForOrder,
    ComplaintNotFound,
    FileComplaint,
    LinkContact,
    OpenCaseForOrder,
    ReceiveMessage,
    RequestCallback,
    RequestCode,
    VerifyCode,
    VerifyOutcome,
    complaint_stream,
    customer_owner,
    live_callback,
    open_case,
    order_stream,
    proactive_complaint,
    verification_stream,
    verify_outcome,
)
from services.kernel.auth import key_ring
from services.kernel.commands import current, execute
from services.kernel.eventstore import Cause, EventStore, derived_id
from services.kernel.sealed_codes import code_digest, seal

#: An order number as customers paste it (e.g. "114-5523190-0012345").
ORDER_NUMBER = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")


@dataclass(frozen=True)
class Filed:
    """Where a contact ended up: a new case (``open``) or the filer's own open case of the same order
    (``linked``)."""

    complaint_id: str
    status: str


@dataclass(frozen=True)
class Ignored:
    """A contact that opens nothing and gets no answer (an auto-reply, a bounce)."""

    reason: str


class Intake:
    def __init__(self, store: EventStore, link_window: timedelta) -> None:
        self.store, self.link_window = store, link_window
        self.threads = store.db["threads"]  # message id -> complaint id (email threading)

    async def file(
        self, complaint: FileComplaint, cause: Cause, sender: str = "web form", owner: str | None = None
    ) -> Filed:
        """Open a case, or join the contact to the case its ``owner`` has open for the same order.

        ``owner`` is who the filer proved to be (``customer_owner``, ``contact_owner``); without a
        proof a filing neither joins a case nor holds the order: it opens a case of its own.
        """
        if complaint.order_id and owner:
            claim = await execute(
                self.store,
                ORDER_CASES,
                order_stream(complaint.order_id),
                OpenCaseForOrder(
                    order_id=complaint.order_id,
                    complaint_id=complaint.complaint_id,
                    owner=owner,
                    window=self.link_window,
                ),
                cause,
            )
            holder = open_case(claim.state, owner, datetime.now(UTC), self.link_window)
            if holder and holder != complaint.complaint_id:
                await self._link(
                    holder,
                    LinkContact(
                        contact_id=complaint.contact_id or cause.id,
                        channel=complaint.channel,
                        order_id=complaint.order_id,
                        text=complaint.description,
                        sender=sender,
                    ),
                    cause,
                )
                return Filed(holder, "linked")
        # the complaint's id was just made: its stream is new (a retried filing finds it, not a read)
        await execute(
            self.store, COMPLAINT, complaint_stream(complaint.complaint_id), complaint, cause, new_stream=True
        )
        return Filed(complaint.complaint_id, "open")

    async def open_proactive_case(self, alert: ShipmentExceptionDetected, cause: Cause) -> Filed:
        """A carrier reported trouble with an order: a case before the customer complains (or a
        new contact on the case already open for that order and its customer)."""
        complaint = proactive_complaint(alert, derived_id("complaint", cause.id), cause.id)
        # The order system names its own customer: that is proof enough to own the case, so the
        # customer's login (and the next alert about the order) joins it.
        return await self.file(
            complaint, cause, sender=f"carrier:{alert.carrier.value}", owner=customer_owner(alert.customer_id)
        )

    async def release_order(self, complaint_id: str, cause: Cause) -> None:
        """The case is closed (confirmed, or unanswered): the next contact about its order opens a
        new case instead of joining a finished one."""
        order_id = (await current(self.store, COMPLAINT, complaint_stream(complaint_id)))[0].order_id
        if order_id:
            await execute(
                self.store,
                ORDER_CASES,
                order_stream(order_id),
                CloseCaseForOrder(order_id=order_id, complaint_id=complaint_id),
                cause,
            )

    async def _link(self, complaint_id: str, contact: LinkContact, cause: Cause) -> None:
        # The case's order claim can land a moment before its ComplaintFiled: wait for it briefly.
        for attempt in range(20):
            try:
                await execute(self.store, COMPLAINT, complaint_stream(complaint_id), contact, cause)
                return
            except ComplaintNotFound:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    async def request_callback(self, complaint_id: str, phone: str, language: str, cause: Cause) -> Callback:
        """ "Call me": the live callback of the case (a second click gets the same one)."""
        outcome = await execute(
            self.store,
            COMPLAINT,
            complaint_stream(complaint_id),
            RequestCallback(callback_id=derived_id("callback", cause.id), phone=phone, preferred_language=language),
            cause,
        )
        return live_callback(outcome.state)

    async def answer_closure(self, complaint_id: str, answer: str, reason: str, cause: Cause) -> None:
        """The complainant's yes or no to "is your complaint closed?", given on their case page."""
        await execute(
            self.store, COMPLAINT, complaint_stream(complaint_id), AnswerClosure(answer=answer, reason=reason), cause
        )

    async def cancel_callback(self, complaint_id: str, callback_id: str, cause: Cause) -> Callback:
        outcome = await execute(
            self.store,
            COMPLAINT,
            complaint_stream(complaint_id),
            CancelCallback(callback_id=callback_id, by="customer"),
            cause,
        )
        return outcome.state.callbacks[callback_id]

    async def receive_email(self, mail: InboundEmail, complaint_of_token, cause: Cause) -> Filed | Ignored:
        """A reply joins its case (reply token, then In-Reply-To/References); anything else files a
        case of its own (a From: header proves nothing, so it never joins another case of the order)."""
        if mail.automated:
            return Ignored(f"{mail.automated}: {mail.automated_reason}")
        complaint_id = complaint_of_token(mail.reply_token) if mail.reply_token else None
        for ref in [] if complaint_id else [mail.in_reply_to, *reversed(mail.references)]:
            thread = await self.threads.find_one({"_id": ref}) if ref else None
            if thread:
                complaint_id = thread["complaint_id"]
                break
        if complaint_id:
            await execute(
                self.store,
                COMPLAINT,
                complaint_stream(complaint_id),
                ReceiveMessage(
                    message_id=mail.message_id or cause.id,
                    channel=Channel.EMAIL,
                    text=mail.text or "(empty)",
                    sender=mail.sender,
                    subject_line=mail.subject,
                    in_reply_to=mail.in_reply_to,
                ),
                cause,
            )
            filed = Filed(complaint_id, "message")
        else:
            text = "\n".join(filter(None, [mail.subject, mail.text]))[:5000] or "(empty email)"
            filed = await self.file(
                FileComplaint(
                    complaint_id=derived_id("complaint", cause.id),
                    category=Category.OTHER,
                    description=text,
                    channel=Channel.EMAIL,
                    complainant=Complainant(email=mail.sender, display_name=mail.sender_name or None),
                    order_id=_order_number(text),
                    contact_id=mail.message_id or cause.id,
                ),
                cause,
                mail.sender,
            )
        if mail.message_id:
            await self.threads.replace_one({"_id": mail.message_id}, {"complaint_id": filed.complaint_id}, upsert=True)
        return filed

    async def receive_social(self, post: SocialPost, cause: Cause) -> Filed:
        """A reply to a post we know joins its case; a new post files a case of its own (a handle
        proves nothing, so it never joins another case of the order)."""
        handle = f"{post.platform}:{post.handle}"
        thread = await self.threads.find_one({"_id": f"social:{post.reply_to_id}"}) if post.reply_to_id else None
        if thread:
            await execute(
                self.store,
                COMPLAINT,
                complaint_stream(thread["complaint_id"]),
                ReceiveMessage(
                    message_id=post.post_id,
                    channel=Channel.SOCIAL,
                    text=post.text,
                    sender=handle,
                    in_reply_to=post.reply_to_id,
                ),
                cause,
            )
            filed = Filed(thread["complaint_id"], "message")
        else:
            filed = await self.file(
                FileComplaint(
                    complaint_id=derived_id("complaint", cause.id),
                    category=Category.OTHER,
                    description=post.text,
                    channel=Channel.SOCIAL,
                    complainant=Complainant(social_handle=handle),
                    order_id=post.order_id,
                    contact_id=post.post_id,
                ),
                cause,
                handle,
            )
        await self.threads.replace_one(
            {"_id": f"social:{post.post_id}"}, {"complaint_id": filed.complaint_id}, upsert=True
        )
        return filed


@dataclass(frozen=True)
class Verified:
    """What a verified contact may file with: the destination proven, and what it is on file for."""

    outcome: VerifyOutcome
    destination: str | None = None


class LockedOutPath:
    """Story 3: file without a login by proving control of the contact on file (one-time code)."""

    def __init__(
        self,
        store: EventStore,
        directory: OrderDirectory,
        code_ttl: timedelta,
        signing_keys: str,
        sealing_public_key: str,
    ) -> None:
        self.store, self.directory, self.code_ttl = store, directory, code_ttl
        #: The code is kept as its digest under these keys and sent sealed for notify (docs/adr/0025).
        self.ring, self.sealing_public_key = key_ring(signing_keys), sealing_public_key

    @staticmethod
    def verification_id(order_id: str | None, seller_id: str | None) -> str:
        # One per reference, whichever channel the code went to: wrong guesses by email and by
        # sms count towards one lock, and codes towards one hourly limit.
        return derived_id("verification", order_id or "", seller_id or "")

    async def contact_on_file(self, order_id: str | None, seller_id: str | None) -> ContactOnFile | None:
        if seller_id:
            return await self.directory.seller_contact(seller_id)
        return await self.directory.order_contact(order_id) if order_id else None

    async def request_code(
        self, order_id: str | None, seller_id: str | None, channel: str, code: str, cause: Cause
    ) -> str:
        """Send ``code`` to the contact on file, if there is one; the answer never says which."""
        verification_id = self.verification_id(order_id, seller_id)
        contact = await self.contact_on_file(order_id, seller_id)
        destination = contact and (contact.email if channel == "email" else contact.phone)
        if destination:
            await execute(
                self.store,
                VERIFICATION,
                verification_stream(verification_id),
                RequestCode(
                    verification_id=verification_id,
                    channel=channel,
                    destination=destination,
                    code_digest=code_digest(code, verification_id, self.ring.signing_key),
                    code_sealed=seal(code, verification_id, self.sealing_public_key),
                    ttl=self.code_ttl,
                ),
                cause,
            )
        return verification_id

    async def verify(
        self, verification_id: str, code: str, order_id: str | None, seller_id: str | None, cause: Cause
    ) -> Verified:
        digests = tuple(code_digest(code, verification_id, secret) for secret in self.ring.keys.values())
        outcome = await execute(
            self.store,
            VERIFICATION,
            verification_stream(verification_id),
            VerifyCode(verification_id=verification_id, code_digests=digests, order_id=order_id, seller_id=seller_id),
            cause,
        )
        verdict = verify_outcome([e.type for e in outcome.commit.events] if outcome.commit else [])
        if verdict == VerifyOutcome.VERIFIED and outcome.state.destination is None:
            verdict = VerifyOutcome.REJECTED  # nothing was ever sent: no code can be right
        return Verified(verdict, outcome.state.destination if verdict == VerifyOutcome.VERIFIED else None)


def _order_number(text: str) -> str | None:
    found = ORDER_NUMBER.search(text)
    return found.group(0) if found else None
