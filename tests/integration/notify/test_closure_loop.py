"""Story 1's last step: "is this closed?" by email after a resolution, answered by link or by reply."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from contracts.intake import ClosureAnswered
from services.kernel import auth
from services.notify.domain import closure_stream
from tests.integration.notify.conftest import publish, settled
from tests.integration.notify.story import closure, filed, link, mail_to, reply, resolved, someone, stream_types
from tests.integration.support import wait_for

YES, NO = "Yes, it's closed:", "No, still a problem:"


async def a_closure_email(notify, mailbox) -> tuple[str, str, dict]:
    complaint_id, email = someone()
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email))
    publish(notify.config.kafka_bootstrap_servers, "routing", resolved(complaint_id))
    [mail] = await mail_to(mailbox, email, notify=notify)
    return complaint_id, email, mail


async def click(notify, url: str):
    """What a browser does: open the link (a page with one button), then press the button."""
    parts = urlsplit(url)
    shown = await notify.get(f"{parts.path}?{parts.query}")
    if shown.status_code != 200:
        return shown, shown
    return shown, await notify.post(f"{parts.path}?{parts.query}")


async def test_a_resolution_sends_the_is_this_closed_email_with_recap_next_steps_and_two_links(notify, mailbox):
    complaint_id, email = someone()
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email))
    await wait_for(lambda: stream_types(notify, f"complainant-{complaint_id}"))
    started = time.monotonic()
    publish(notify.config.kafka_bootstrap_servers, "routing", resolved(complaint_id))

    [mail] = await mail_to(mailbox, email, notify=notify)
    latency = time.monotonic() - started

    asked = (await closure(notify, complaint_id)).current
    print(f"\nresolve-to-email latency: {latency * 1000:.0f} ms")
    assert mail["subject"] == f"Is your complaint {complaint_id} closed?"
    assert mail["message_id"] == asked.message_id and asked.to == email
    headers = mail["headers"]
    assert headers["Auto-Submitted"] == "auto-generated"
    assert (
        headers["Reply-To"]
        == f"case+{auth.reply_token(complaint_id, notify.config.signing_key)}@complaints.example.com"
    )
    assert mail["content_type"] == "multipart/alternative" and mail["html"] and mail["text"]
    assert "We reported the driver" in mail["text"] and "within 5 working days" in mail["text"]
    assert link(mail["text"], YES) in mail["html"].replace("&amp;", "&")
    assert "Sam" in mail["text"] and "internal" not in mail["text"].lower()


async def test_clicking_yes_closes_the_case_and_clicking_again_changes_nothing(notify, mailbox):
    complaint_id, email, mail = await a_closure_email(notify, mailbox)

    shown, answered = await click(notify, link(mail["text"], YES))
    assert shown.status_code == 200 and "Yes, it&#39;s closed" in shown.text  # the GET only shows the button
    assert answered.status_code == 200 and "Your complaint is closed" in answered.text
    _, again = await click(notify, link(mail["text"], YES))
    _, then_no = await click(notify, link(mail["text"], NO))

    assert "already have your answer" in again.text and "already have your answer" in then_no.text
    assert (await closure(notify, complaint_id)).current.status == "confirmed"
    assert (await stream_types(notify, closure_stream(complaint_id))).count("CustomerConfirmedClosed") == 1
    assert "ComplaintReopened" not in await stream_types(notify, closure_stream(complaint_id))


async def test_opening_a_link_without_pressing_the_button_changes_nothing(notify, mailbox):
    complaint_id, _, mail = await a_closure_email(notify, mailbox)
    parts = urlsplit(link(mail["text"], YES))

    assert (await notify.get(f"{parts.path}?{parts.query}")).status_code == 200

    assert (await closure(notify, complaint_id)).current.status == "proposed"


async def test_clicking_no_reopens_the_same_case_and_keeps_its_history(notify, mailbox):
    complaint_id, _, mail = await a_closure_email(notify, mailbox)

    _, answered = await click(notify, link(mail["text"], NO))
    _, again = await click(notify, link(mail["text"], NO))

    loop = await closure(notify, complaint_id)
    assert "open again" in answered.text and "already have your answer" in again.text
    assert loop.current.status == "disputed" and loop.current.recap.startswith("We reported the driver")
    assert (await stream_types(notify, closure_stream(complaint_id))) == [
        "ClosureConfirmationRequested",
        "ComplaintReopened",
    ]


async def test_a_tampered_link_shows_a_clear_page_and_changes_nothing(notify, mailbox):
    complaint_id, _, mail = await a_closure_email(notify, mailbox)
    url = link(mail["text"], YES)
    header, claims, signature = url.split("token=")[1].split(".")
    tampered = url.replace(signature, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB"))

    shown, pressed = await click(notify, tampered)
    forged = await notify.post(f"/closure?token={header}.{claims}")

    assert shown.status_code == 400 and "This link is not valid" in shown.text and "Nothing was changed" in shown.text
    assert pressed.status_code == 400 and forged.status_code == 400
    assert (await closure(notify, complaint_id)).current.status == "proposed"


async def test_an_expired_link_shows_a_clear_page_and_changes_nothing(notify, mailbox):
    complaint_id, _, _ = await a_closure_email(notify, mailbox)
    asked = (await closure(notify, complaint_id)).current
    expired = auth.sign(
        {"purpose": "closure", "case": complaint_id, "message_id": asked.message_id, "answer": "yes"},
        notify.config.signing_key,
        timedelta(seconds=-1),
    )

    shown = await notify.get(f"/closure?token={expired}")
    pressed = await notify.post(f"/closure?token={expired}")

    assert shown.status_code == 410 and "This link has expired" in shown.text
    assert pressed.status_code == 410
    assert (await closure(notify, complaint_id)).current.status == "proposed"


async def test_a_reply_yes_thanks_all_sorted_confirms_the_closure(notify, mailbox):
    complaint_id, email, mail = await a_closure_email(notify, mailbox)

    publish(
        notify.config.kafka_bootstrap_servers,
        "intake",
        reply(complaint_id, email, "yes thanks, all sorted", mail["message_id"]),
    )

    loop = await wait_for(lambda: _answered(notify, complaint_id))
    assert loop.current.status == "confirmed" and loop.current.answered_via == "reply"


async def test_a_reply_no_the_driver_came_again_reopens_the_case(notify, mailbox):
    complaint_id, email, mail = await a_closure_email(notify, mailbox)

    publish(
        notify.config.kafka_bootstrap_servers,
        "intake",
        reply(complaint_id, email, "no, the driver came again", mail["message_id"]),
    )

    loop = await wait_for(lambda: _answered(notify, complaint_id))
    assert loop.current.status == "disputed" and loop.current.reopen_reason == "no, the driver came again"


async def test_the_no_button_of_the_case_page_reopens_with_the_reason_and_a_later_yes_changes_nothing(notify, mailbox):
    complaint_id, _, _ = await a_closure_email(notify, mailbox)
    now = datetime.now(UTC)

    _, then_yes = publish(
        notify.config.kafka_bootstrap_servers,
        "intake",
        ClosureAnswered(complaint_id=complaint_id, answer="no", reason="The refund has not come.", answered_at=now),
        ClosureAnswered(complaint_id=complaint_id, answer="yes", answered_at=now),
    )

    await wait_for(lambda: notify.store.db["inbox"].find_one({"_id": then_yes}))
    loop = await closure(notify, complaint_id)
    assert loop.current.status == "disputed" and loop.current.answered_via == "page"
    assert loop.current.reopen_reason == "The refund has not come."
    assert (await stream_types(notify, closure_stream(complaint_id))) == [
        "ClosureConfirmationRequested",
        "ComplaintReopened",
    ]


async def test_a_reply_that_is_neither_yes_nor_no_is_left_for_the_agent(notify, mailbox):
    complaint_id, email, mail = await a_closure_email(notify, mailbox)
    question = reply(complaint_id, email, "When will the refund land on my card?", mail["message_id"])
    then_yes = reply(complaint_id, email, "yes", mail["message_id"])

    publish(notify.config.kafka_bootstrap_servers, "intake", question, then_yes)

    loop = await wait_for(lambda: _answered(notify, complaint_id))
    assert loop.current.status == "confirmed"  # the question changed nothing; the later yes did


async def test_an_unanswered_question_gets_one_reminder_then_closes_unconfirmed(notify, mailbox):
    complaint_id, email, first = await a_closure_email(notify, mailbox)

    notify.clock.advance(timedelta(hours=47))
    await notify.notify.tick()
    assert len(await asyncio.to_thread(mailbox.messages, email)) == 1
    notify.clock.advance(timedelta(hours=2))
    await notify.notify.tick()
    await notify.notify.tick()
    _, reminder = await mail_to(mailbox, email, 2)
    notify.clock.advance(timedelta(days=5))
    await notify.notify.tick()

    assert reminder["subject"].startswith("Reminder:") and reminder["headers"]["In-Reply-To"] == first["message_id"]
    assert (await closure(notify, complaint_id)).current.status == "closed_unconfirmed"
    await settled(notify)
    assert len(await asyncio.to_thread(mailbox.messages, email)) == 2  # one reminder at most
    _, late = await click(notify, link(first["text"], YES))  # a late answer still counts
    assert "Your complaint is closed" in late.text
    assert (await closure(notify, complaint_id)).current.status == "confirmed"


async def _answered(notify, complaint_id: str):
    loop = await closure(notify, complaint_id)
    return loop if loop.current and loop.current.status != "proposed" else None


async def test_a_resolution_read_before_its_complaint_waits_for_it_and_still_asks_once(notify, mailbox):
    complaint_id, email = someone()
    publish(notify.config.kafka_bootstrap_servers, "routing", resolved(complaint_id))
    await asyncio.sleep(1.0)  # the resolution is read first and put back until the complaint is known
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email))

    [mail] = await mail_to(mailbox, email)

    await settled(notify)
    assert len(await asyncio.to_thread(mailbox.messages, email)) == 1
    assert mail["message_id"] == (await closure(notify, complaint_id)).current.message_id


async def test_a_signed_token_for_something_else_is_not_an_answer_link(notify, mailbox):
    complaint_id, _, _ = await a_closure_email(notify, mailbox)
    case_link = auth.sign({"complaint_id": complaint_id}, notify.config.signing_key, timedelta(days=1))  # intake's

    shown = await notify.post(f"/closure?token={case_link}")

    assert shown.status_code == 400 and "not a link to answer our question" in shown.text
    assert (await closure(notify, complaint_id)).current.status == "proposed"
