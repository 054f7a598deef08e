"""Notify's use cases: each loads a stream, decides with the pure domain, and appends.

Nothing here talks SMTP: a message to send is a ``MessageQueued`` in the address's ledger
(decided by the loop guard), and the courier (``courier.py``) delivers what is queued.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from opentelemetry.trace import SpanKind
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Event
from contracts.intake import (
    Channel,
    ClosureAnswered,
    ComplaintFiled,
    CustomerMessageReceived,
    VerificationCodeRequested,
    short_reference,
)
from contracts.routing import CallbackDispatched, ComplaintResolved, PartnerOutcomeRecorded
from services.kernel import auth
from services.kernel.clock import Clock
from services.kernel.commands import current, execute
from services.kernel.eventstore import Cause, EventStore, derived_id
from services.kernel.telemetry import continued_span
from services.notify.adapters.accounts import AccountDirectory
from services.notify.adapters.telephony import TelephonyFailed, TwilioStyleTelephony
from services.notify.claims import Claims, Won, idempotency_key
from services.notify.complainants import COMPLAINANT, Complainant, NoteComplainant, complainant_stream
from services.notify.dialout import DIALOUT, DialOut, RecordCall, RequestDialOut, dialout_stream
from services.notify.domain import (
    CLOSURE,
    CallRetryPolicy,
    Confirm,
    Dispute,
    ProposeClosure,
    ReadReply,
    Round,
    Tick,
    closure_stream,
    reminder_message_id,
)
from services.notify.ledger import (
    LEDGER,
    AddressLedger,
    MarkUndeliverable,
    NoteAccountLock,
    ProposeMessage,
    RecordFailure,
    RecordSent,
    ledger_stream,
)
from services.notify.loop_guard import NEEDS_LOGIN, GuardPolicy, ProposedMessage
from services.notify.messages import ACTIONS, SMS_TEMPLATES

log = logging.getLogger(__name__)

#: A code is asked for by the person themselves: counting it like a reminder would lock them out.
PERSON_ASKED = GuardPolicy(max_per_case=1000, min_interval=timedelta(0))


@dataclass(frozen=True)
class Policies:
    """What the settings say about waiting, guarding and dialling."""

    guard: GuardPolicy
    reminder_after: timedelta
    close_after: timedelta
    link_ttl: timedelta
    calls: CallRetryPolicy = CallRetryPolicy()
    #: How long a claimed call may stay unrecorded before another path takes it over (its holder died).
    claim_expiry: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class Links:
    """How one-click links and reply addresses are made."""

    public_url: str
    signing_key: str
    mail_domain: str
    #: Intake's pages, where the receipt's link to the case goes; no receipts without a lifetime.
    case_page_url: str = "http://127.0.0.1:8001"
    case_link_ttl: timedelta | None = None


AnswerResult = Literal["recorded", "already_answered", "superseded", "unknown"]


class Notify:
    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        policies: Policies,
        links: Links,
        telephony: TwilioStyleTelephony,
        accounts: AccountDirectory,
        agent_endpoint: str,
    ) -> None:
        self.store, self.clock, self.policies, self.links = store, clock, policies, links
        self.telephony, self.accounts, self.agent_endpoint = telephony, accounts, agent_endpoint
        self.agenda = store.db["agenda"]
        #: Events that came before their complaint's ComplaintFiled (see complainant_or_park).
        self.parked = store.db["parked"]
        self.claims = Claims(store.db, policies.claim_expiry)

    # --- who -------------------------------------------------------------------------------------

    async def note_complainant(self, filed: ComplaintFiled, cause: Cause) -> None:
        """Remember how to reach the complainant (a locked account is noted on their addresses),
        then do what waited for it."""
        outcome = await execute(
            self.store,
            COMPLAINANT,
            complainant_stream(filed.complaint_id),
            NoteComplainant(filed=filed),
            cause,
            self.clock.now(),
            new_stream=True,  # a complaint just filed: no one noted its complainant yet
        )
        who = outcome.state
        await self.send_receipt(filed, who, cause)
        if who.account_locked:
            for address in filter(None, (who.email, who.phone)):
                await execute(
                    self.store,
                    LEDGER,
                    ledger_stream(address),
                    NoteAccountLock(address=address, recipient=who.recipient),
                    cause,
                    self.clock.now(),
                )
        for waiting in await self.parked.find({"complaint_id": filed.complaint_id}).to_list():
            event = self.store.registry.decode(waiting["type"], waiting["data"])
            await getattr(self, waiting["use_case"])(event, Cause(**waiting["cause"]))
            await self.parked.delete_one({"_id": waiting["_id"]})

    async def send_receipt(self, filed: ComplaintFiled, who: Complainant, cause: Cause) -> None:
        """A receipt for a complaint someone filed (not a case we opened ourselves): its short
        reference to read aloud and the link back to its case page, by email, else by SMS. The
        link's token is intake's case token (the same SIGNING_KEY); it travels in the message only,
        never on a topic."""
        if self.links.case_link_ttl is None or filed.channel == Channel.PROACTIVE:
            return
        address, channel = (who.email, "email") if who.email else (who.phone, "sms")
        if not address:
            return  # a social handle only: the platform's thread is the receipt
        token = auth.sign({"complaint_id": filed.complaint_id}, self.links.signing_key, self.links.case_link_ttl)
        context = {
            "display_name": who.greeting,
            "reference": short_reference(filed.complaint_id),
            "case_url": f"{self.links.case_page_url.rstrip('/')}/complaints/{filed.complaint_id}?token={token}",
        }
        # One receipt per complaint, whatever delivered its filing twice: the id is the complaint's.
        await self.queue(
            who,
            "receipt",
            address,
            channel,
            self.message_id("receipt", filed.complaint_id, filed.complaint_id),
            context,
            cause,
            human_action_at=filed.filed_at,
        )

    async def known(self, complaint_id: str) -> Complainant | None:
        """How to reach the case's complainant, if notify saw the case's ComplaintFiled."""
        complainant, version = await current(self.store, COMPLAINANT, complainant_stream(complaint_id))
        return complainant if version else None

    async def complainant_or_park(self, complaint_id: str, event: Event, cause: Cause) -> Complainant | None:
        """The complainant; or, when ComplaintFiled was not read yet, park ``event`` until it is.

        ComplaintFiled comes on intake's topic and the case's later events on routing's, so the
        second can be read first. Failing the message would not do: the consumer would move on
        to later messages of its partition and commit past it. Parked work is written before the
        second look, and ``note_complainant`` looks after writing, so one of them always sees the
        other (both may: the use cases are idempotent).
        """
        if (who := await self.known(complaint_id)) is not None:
            return who
        with suppress(DuplicateKeyError):
            await self.parked.insert_one(
                {
                    "_id": f"{complaint_id}|{cause.id}",
                    "complaint_id": complaint_id,
                    "use_case": cause.handler,
                    "type": event.ce_type(),
                    "data": event.model_dump(mode="json"),
                    "cause": asdict(cause),
                }
            )
        log.warning(
            "no ComplaintFiled seen yet: parked until it comes",
            extra={"fields": {"complaint_id": complaint_id, "use_case": cause.handler}},
        )
        if (who := await self.known(complaint_id)) is not None:
            await self.parked.delete_one({"_id": f"{complaint_id}|{cause.id}"})
        return who

    # --- the closure loop ------------------------------------------------------------------------

    async def propose_closure(self, resolved: ComplaintResolved, cause: Cause) -> None:
        """ "Is this closed?" after a resolution, by email with the recap and two signed links."""
        if (who := await self.complainant_or_park(resolved.complaint_id, resolved, cause)) is None:
            return
        if not who.email:
            log.warning(
                "no email address: the closure question cannot be asked by email",
                extra={"fields": {"complaint_id": resolved.complaint_id}},
            )
            return
        message_id = self.message_id("closure", resolved.complaint_id, cause.id)
        outcome = await execute(
            self.store,
            CLOSURE,
            closure_stream(resolved.complaint_id),
            ProposeClosure(
                complaint_id=resolved.complaint_id,
                message_id=message_id,
                to=who.email,
                recap=resolved.recap,
                next_steps=tuple(resolved.next_steps),
                link_ttl=self.policies.link_ttl,
            ),
            cause,
            self.clock.now(),
        )
        asked = next(r for r in outcome.state.rounds if r.message_id == message_id)
        await self._ask(who, asked, "closure_question", message_id, cause, resolved.resolved_at)

    async def _ask(
        self,
        who: Complainant,
        asked: Round,
        template: str,
        message_id: str,
        cause: Cause,
        human_action_at: datetime | None = None,
    ) -> None:
        links = {answer: self.closure_link(who.complaint_id, asked.message_id, answer) for answer in ("yes", "no")}
        context = {
            "display_name": who.greeting,
            "complaint_id": who.complaint_id,
            "recap": asked.recap,
            "next_steps": list(asked.next_steps),
            "yes_url": links["yes"],
            "no_url": links["no"],
            "expires_at": (asked.asked_at + asked.link_ttl).strftime("%d %B %Y"),
        }
        await self.queue(
            who,
            template,
            who.email,
            "email",
            message_id,
            context,
            cause,
            in_reply_to=None if message_id == asked.message_id else asked.message_id,
            human_action_at=human_action_at,
        )

    def closure_link(self, complaint_id: str, message_id: str, answer: str) -> str:
        # "case", not "complaint_id": intake reads any token naming a complaint_id as a key to the
        # case page (same SIGNING_KEY), and an answer link must not be one.
        token = auth.sign(
            {"purpose": "closure", "case": complaint_id, "message_id": message_id, "answer": answer},
            self.links.signing_key,
            self.policies.link_ttl,
        )
        return f"{self.links.public_url.rstrip('/')}/closure?token={token}"

    async def answer_link(self, claims: dict, cause: Cause) -> tuple[AnswerResult, str | None]:
        """A click on "Yes" or "No": recorded once; a second click, or an old question's link, changes nothing."""
        complaint_id = claims["case"]
        loop, _ = await current(self.store, CLOSURE, closure_stream(complaint_id))
        if loop.current is None:
            return "unknown", None
        if claims["message_id"] != loop.current.message_id:
            return "superseded", loop.current.status
        command = Confirm(via="link") if claims["answer"] == "yes" else Dispute(via="link")
        outcome = await execute(self.store, CLOSURE, closure_stream(complaint_id), command, cause, self.clock.now())
        return ("recorded" if outcome.commit else "already_answered"), outcome.state.current.status

    async def answer_on_page(self, answered: ClosureAnswered, cause: Cause) -> None:
        """The buttons of the complainant's case page (intake's): the current round's answer, as a
        click on the email's link would give it. Never asked, or answered already: nothing changes
        (the closure loop decides, as for a link)."""
        command = Confirm(via="page") if answered.answer == "yes" else Dispute(via="page", reason=answered.reason)
        await execute(self.store, CLOSURE, closure_stream(answered.complaint_id), command, cause, self.clock.now())

    async def read_reply(self, received: CustomerMessageReceived, cause: Cause) -> None:
        """A reply while the question is open: a plain yes confirms, a plain no reopens, else the agent reads it."""
        loop, version = await current(self.store, CLOSURE, closure_stream(received.complaint_id))
        if not version or loop.current.status not in ("proposed", "closed_unconfirmed"):
            return
        await execute(
            self.store,
            CLOSURE,
            closure_stream(received.complaint_id),
            ReadReply(text=received.text),
            cause,
            self.clock.now(),
        )

    # --- outcome, codes, other systems' messages ------------------------------------------------

    async def share_outcome(self, recorded: PartnerOutcomeRecorded, cause: Cause) -> None:
        """Tell the complainant what was done: only ``outcome_for_customer``, never the internal note."""
        if (who := await self.complainant_or_park(recorded.complaint_id, recorded, cause)) is None:
            return
        context = {
            "display_name": who.greeting,
            "complaint_id": recorded.complaint_id,
            "outcome": recorded.outcome_for_customer,
        }
        if who.email:
            await self.queue(
                who,
                "outcome",
                who.email,
                "email",
                self.message_id("outcome", recorded.complaint_id, cause.id),
                context,
                cause,
                human_action_at=recorded.recorded_at,
            )

    async def send_code(self, requested: VerificationCodeRequested, cause: Cause) -> None:
        """A one-time code for the locked-out path, by email or SMS, to the contact on file.

        The code stays sealed in the ledger; the courier opens it as it hands the message over
        (docs/adr/0025). A request from before sealing has no code to send (void anyway)."""
        if not requested.code_sealed:
            return
        address = requested.destination.lower()
        who = Complainant(
            recipient=address,
            email=address if requested.channel == "email" else None,
            phone=address if requested.channel == "sms" else None,
        )
        context = {
            "code_sealed": requested.code_sealed,
            "expires_at": requested.expires_at.strftime("%H:%M UTC"),
            "verification_id": requested.verification_id,
        }
        await self.queue(
            who,
            "verification_code",
            address,
            requested.channel,
            self.message_id("code", requested.verification_id, cause.id),
            context,
            cause,
            human_action_at=requested.requested_at,
            policy=PERSON_ASKED,
        )

    async def request(
        self, who: Complainant, template: str, address: str, channel: str, context: dict, request_id: str, cause: Cause
    ) -> AddressLedger:
        """Another system's automated message (e.g. the seller account's daily "please log in").

        A message that needs a login first asks the account system whether the account is locked.
        """
        if ACTIONS[template] in NEEDS_LOGIN and (locked := await self.accounts.is_locked(who.recipient)) is not None:
            # Its own handler name: the same cause appends the message to the same stream next.
            await execute(
                self.store,
                LEDGER,
                ledger_stream(address),
                NoteAccountLock(address=address.lower(), recipient=who.recipient, locked=locked),
                replace(cause, handler="note_account_lock"),
                self.clock.now(),
            )
        return await self.queue(
            who,
            template,
            address.lower(),
            channel,
            self.message_id(template, who.recipient, request_id),
            context,
            cause,
        )

    async def queue(
        self,
        who: Complainant,
        template: str,
        address: str,
        channel: str,
        message_id: str,
        context: dict,
        cause: Cause,
        in_reply_to: str | None = None,
        human_action_at: datetime | None = None,
        policy: GuardPolicy | None = None,
    ) -> AddressLedger:
        """Ask the loop guard to let a message go; queued, or held back with NotificationSuppressed
        (and sent by SMS instead, when the guard switches channel)."""
        fallbacks = ("sms",) if channel == "email" and who.phone and template in SMS_TEMPLATES else ()
        message = ProposedMessage(
            recipient=who.recipient or address,
            address=address,
            complaint_id=who.complaint_id,
            template=template,
            required_action=ACTIONS[template],
            channel=channel,
            fallbacks=fallbacks,
        )
        outcome = await execute(
            self.store,
            LEDGER,
            ledger_stream(address),
            ProposeMessage(
                message=message,
                message_id=message_id,
                context=context,
                in_reply_to=in_reply_to,
                human_action_at=human_action_at,
                policy=policy or self.policies.guard,
            ),
            cause,
            self.clock.now(),
        )
        if outcome.state.suppressed.get(message_id) == "sms":
            return await self.queue(
                who,
                template,
                who.phone,
                "sms",
                message_id.replace("@", ".sms@", 1),
                context,
                cause,
                human_action_at=human_action_at,
                policy=policy,
            )
        return outcome.state

    async def mark_bounced(self, address: str, status: str, complaint_id: str | None, cause: Cause) -> None:
        await execute(
            self.store,
            LEDGER,
            ledger_stream(address),
            MarkUndeliverable(address=address, bounce_status=status, complaint_id=complaint_id),
            cause,
            self.clock.now(),
        )

    # --- what the courier reports ----------------------------------------------------------------

    async def sent(self, address: str, message_id: str, attempts: int) -> None:
        cause = Cause.of_request(derived_id("sent", message_id), "message_sent")
        await execute(
            self.store,
            LEDGER,
            ledger_stream(address),
            RecordSent(message_id=message_id, attempts=attempts),
            cause,
            self.clock.now(),
        )

    async def failed(self, address: str, message_id: str, attempts: int, reason: str) -> None:
        cause = Cause.of_request(derived_id("failed", message_id), "message_failed")
        await execute(
            self.store,
            LEDGER,
            ledger_stream(address),
            RecordFailure(message_id=message_id, attempts=attempts, reason=reason),
            cause,
            self.clock.now(),
        )

    # --- callback dial-out -----------------------------------------------------------------------

    async def dial(self, dispatched: CallbackDispatched, cause: Cause) -> None:
        """Connect agent and complainant now; a failed call is retried by the ticker, then email/SMS."""
        requested = await execute(
            self.store,
            DIALOUT,
            dialout_stream(dispatched.callback_id),
            RequestDialOut(
                complaint_id=dispatched.complaint_id,
                callback_id=dispatched.callback_id,
                agent_id=dispatched.agent_id,
                phone=dispatched.phone,
            ),
            cause,
            self.clock.now(),
            new_stream=True,  # a callback just dispatched: its dial-out is new
        )
        await self.dial_if_due(dispatched.callback_id, requested.state)

    async def dial_if_due(self, callback_id: str, state: DialOut | None = None) -> DialOut:
        """Place the callback's due call attempt, if this path wins the attempt's claim: the consumer's
        handler, the ticker, another replica and a retry after a crash all come here (docs/adr/0015).
        ``state``: the dial-out as its caller just appended or read it (else it is read)."""
        state = state or await self._dialout(callback_id)
        if (attempt := self._due_attempt(state)) and (won := await self.claims.claim(f"call:{callback_id}:{attempt}")):
            if won is Won.TAKEN_OVER:
                # Its holder may have placed and recorded the attempt after we loaded the state: look
                # again. A new claim needs no look: every path records an attempt under its claim.
                state = await self._dialout(callback_id)
            if self._due_attempt(state) == attempt:
                state = await self._place_call(callback_id, state, attempt)
        if state.gave_up(self.policies.calls):
            await self._tell_missed(state)
        return state

    async def _dialout(self, callback_id: str) -> DialOut:
        return (await current(self.store, DIALOUT, dialout_stream(callback_id)))[0]

    def _due_attempt(self, state: DialOut) -> int | None:
        due = state.next_attempt_at(self.policies.calls)
        return state.failures + 1 if due is not None and due <= self.clock.now() else None

    async def _place_call(self, callback_id: str, state: DialOut, attempt: int) -> DialOut:
        effect = f"call:{callback_id}:{attempt}"
        try:
            record = RecordCall(
                attempt=attempt,
                policy=self.policies.calls,
                call_sid=await self.telephony.place_call(
                    state.phone, self.agent_endpoint.format(agent_id=state.agent_id), idempotency_key(effect)
                ),
            )
        except TelephonyFailed as exc:
            record = RecordCall(attempt=attempt, policy=self.policies.calls, reason=exc.reason)
        cause = Cause.of_request(derived_id("call", callback_id, str(attempt)), "place_call")
        return (await execute(self.store, DIALOUT, dialout_stream(callback_id), record, cause, self.clock.now())).state

    async def _tell_missed(self, state: DialOut) -> None:
        who = await self.known(state.complaint_id) or Complainant(
            complaint_id=state.complaint_id, recipient=state.phone, phone=state.phone
        )
        context = {"display_name": who.greeting, "complaint_id": state.complaint_id, "attempts": state.failures}
        address, channel = (who.email, "email") if who.email else (state.phone, "sms")
        cause = Cause.of_request(derived_id("callback_missed", state.callback_id), "callback_missed")
        await self.queue(
            who,
            "callback_missed",
            address,
            channel,
            self.message_id("callback-missed", state.callback_id, ""),
            context,
            cause,
        )

    # --- time passing ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Send due reminders, close unanswered questions, retry due calls (each once)."""
        now = self.clock.now()
        for entry in await self.agenda.find({}).to_list():
            kind, _, key = entry["_id"].partition(":")
            if kind == "closure" and self._closure_due(entry, now):
                await self._tick_closure(key, now)
            elif kind == "dialout":
                with continued_span(
                    "tick dial-out", entry.get("traceparent"), SpanKind.INTERNAL, {"complaints.callback_id": key}
                ):
                    state = await self.dial_if_due(key)
                if state.next_attempt_at(self.policies.calls) is None:
                    await self.agenda.delete_one({"_id": entry["_id"]})  # placed, or the fallback is queued

    def _closure_due(self, entry: dict, now: datetime) -> bool:
        """Whether the question's reminder or close may be due: a case waiting for its answer is
        not read on every tick (thousands of open questions would be thousands of reads a round)."""
        wait = (
            self.policies.close_after
            if entry.get("reminded")
            else min(self.policies.reminder_after, self.policies.close_after)
        )
        return entry["since"] + wait <= now  # the store client is tz-aware (kernel/runtime.py)

    async def _tick_closure(self, complaint_id: str, now: datetime) -> None:
        cause = Cause.of_request(derived_id("tick", complaint_id, now.isoformat()), "tick_closure")
        outcome = await execute(
            self.store,
            CLOSURE,
            closure_stream(complaint_id),
            Tick(reminder_after=self.policies.reminder_after, close_after=self.policies.close_after),
            cause,
            now,
        )
        current = outcome.state.current
        if current is not None and current.reminded and current.status == "proposed":
            who = await self.known(complaint_id)
            await self._ask(who, current, "closure_reminder", reminder_message_id(current.message_id), cause)

    # --- ids -------------------------------------------------------------------------------------

    def message_id(self, kind: str, subject: str, cause_id: str) -> str:
        """One Message-ID per intent, derived from its cause: the same cause never sends twice."""
        return f"<{kind}.{subject}.{derived_id(kind, subject, cause_id)[:12]}@{self.links.mail_domain}>"

    def reply_address(self, complaint_id: str) -> str:
        return f"case+{auth.reply_token(complaint_id, self.links.signing_key)}@{self.links.mail_domain}"
