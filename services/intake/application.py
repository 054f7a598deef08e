"""Intake's use cases: each loads, decides with the pure domain, and appends; no HTTP, no Kafka here."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from contracts.intake import Category, Channel, Complainant
from services.intake.adapters.email import InboundEmail
from services.intake.adapters.social import SocialPost
from services.intake.domain import (COMPLAINT, ORDER_CASES, Callback, CancelCallback,
                                    ComplaintNotFound, FileComplaint, LinkContact,
                                    OpenCaseForOrder, ReceiveMessage, RequestCallback,
                                    complaint_stream, live_callback, open_case, order_stream)
from services.kernel.commands import execute
from services.kernel.eventstore import Cause, EventStore, derived_id

#: An order number as customers paste it (e.g. "114-5523190-0012345").
ORDER_NUMBER = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")


@dataclass(frozen=True)
class Filed:
    """Where a contact ended up: a new case (``open``) or an open case of the same order (``linked``)."""

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

    async def file(self, complaint: FileComplaint, cause: Cause, sender: str = "web form") -> Filed:
        """Open a case, or join the contact to the case already open for the same order."""
        if complaint.order_id:
            claim = await execute(self.store, ORDER_CASES, order_stream(complaint.order_id),
                                  OpenCaseForOrder(order_id=complaint.order_id, complaint_id=complaint.complaint_id,
                                                   window=self.link_window), cause)
            holder = open_case(claim.state, datetime.now(UTC), self.link_window)
            if holder and holder != complaint.complaint_id:
                await self._link(holder, LinkContact(contact_id=complaint.contact_id or cause.id,
                                                     channel=complaint.channel, order_id=complaint.order_id,
                                                     text=complaint.description, sender=sender), cause)
                return Filed(holder, "linked")
        await execute(self.store, COMPLAINT, complaint_stream(complaint.complaint_id), complaint, cause)
        return Filed(complaint.complaint_id, "open")

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
        """"Call me": the live callback of the case (a second click gets the same one)."""
        outcome = await execute(self.store, COMPLAINT, complaint_stream(complaint_id), RequestCallback(
            callback_id=derived_id("callback", cause.id), phone=phone, preferred_language=language), cause)
        return live_callback(outcome.state)

    async def cancel_callback(self, complaint_id: str, callback_id: str, cause: Cause) -> Callback:
        outcome = await execute(self.store, COMPLAINT, complaint_stream(complaint_id),
                                CancelCallback(callback_id=callback_id, by="customer"), cause)
        return outcome.state.callbacks[callback_id]

    async def receive_email(self, mail: InboundEmail, complaint_of_token, cause: Cause) -> Filed | Ignored:
        """A reply joins its case (reply token, then In-Reply-To/References); anything else files."""
        if mail.automated:
            return Ignored(f"{mail.automated}: {mail.automated_reason}")
        complaint_id = complaint_of_token(mail.reply_token) if mail.reply_token else None
        for ref in [] if complaint_id else [mail.in_reply_to, *reversed(mail.references)]:
            thread = await self.threads.find_one({"_id": ref}) if ref else None
            if thread:
                complaint_id = thread["complaint_id"]
                break
        if complaint_id:
            await execute(self.store, COMPLAINT, complaint_stream(complaint_id), ReceiveMessage(
                message_id=mail.message_id or cause.id, channel=Channel.EMAIL, text=mail.text or "(empty)",
                sender=mail.sender, subject_line=mail.subject, in_reply_to=mail.in_reply_to), cause)
            filed = Filed(complaint_id, "message")
        else:
            text = "\n".join(filter(None, [mail.subject, mail.text]))[:5000] or "(empty email)"
            filed = await self.file(FileComplaint(
                complaint_id=derived_id("complaint", cause.id), category=Category.OTHER, description=text,
                channel=Channel.EMAIL, complainant=Complainant(email=mail.sender, display_name=mail.sender_name or None),
                order_id=_order_number(text), contact_id=mail.message_id or cause.id), cause, mail.sender)
        if mail.message_id:
            await self.threads.replace_one({"_id": mail.message_id}, {"complaint_id": filed.complaint_id}, upsert=True)
        return filed

    async def receive_social(self, post: SocialPost, cause: Cause) -> Filed:
        """A reply to a post we know joins its case; a new post files (and links by order)."""
        handle = f"{post.platform}:{post.handle}"
        thread = await self.threads.find_one({"_id": f"social:{post.reply_to_id}"}) if post.reply_to_id else None
        if thread:
            await execute(self.store, COMPLAINT, complaint_stream(thread["complaint_id"]), ReceiveMessage(
                message_id=post.post_id, channel=Channel.SOCIAL, text=post.text, sender=handle,
                in_reply_to=post.reply_to_id), cause)
            filed = Filed(thread["complaint_id"], "message")
        else:
            filed = await self.file(FileComplaint(
                complaint_id=derived_id("complaint", cause.id), category=Category.OTHER, description=post.text,
                channel=Channel.SOCIAL, complainant=Complainant(social_handle=handle),
                order_id=post.order_id, contact_id=post.post_id), cause, handle)
        await self.threads.replace_one({"_id": f"social:{post.post_id}"}, {"complaint_id": filed.complaint_id},
                                       upsert=True)
        return filed


def _order_number(text: str) -> str | None:
    found = ORDER_NUMBER.search(text)
    return found.group(0) if found else None


def threads_of(db: AsyncDatabase):
    return db["threads"]
