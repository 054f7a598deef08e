"""Inbound email: a raw RFC 5322 message becomes an InboundEmail, or an InvalidEmail naming the problem."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.intake.adapters.email import AutomatedKind, InboundEmail, InvalidEmail, parse_email

SAMPLES = Path(__file__).parent / "samples" / "email"


def sample(name: str) -> InboundEmail:
    return parse_email((SAMPLES / f"{name}.eml").read_bytes())


def message(*headers: str, body: str = "Where is my parcel?") -> bytes:
    defaults = [
        "From: Sam Okafor <sam@example.com>",
        "To: complaints@help.example.com",
        "Subject: Parcel",
        "Date: Tue, 10 Mar 2026 09:14:02 +0000",
    ]
    return ("\r\n".join([*defaults, *headers]) + "\r\n\r\n" + body).encode()


# --- a person's reply -------------------------------------------------------------------------


def test_a_reply_shows_the_new_text_first_and_keeps_the_quoted_history_apart():
    email = sample("reply_with_quoted_history")
    assert email.text.startswith("Hello,\n\nStill nothing arrived.")
    assert email.text.endswith("Sam")
    assert "We are sorry" not in email.text
    assert email.quoted.startswith("On Mon, 9 Mar 2026 at 17:02, Customer Care")
    assert "> We are sorry your package has not arrived." in email.quoted


def test_a_reply_carries_the_case_reply_token_from_its_to_address():
    assert sample("reply_with_quoted_history").reply_token == "7f3k9q2m"


def test_a_reply_carries_its_threading_headers():
    email = sample("reply_with_quoted_history")
    assert email.message_id == "<CAJ8r1x=Q2vTn5kLqR0uWm3c7hZ8PgX1sYd4e@mail.gmail.com>"
    assert email.in_reply_to == "<c-2026-000042.3@help.example.com>"
    assert email.references == ["<c-2026-000042.1@help.example.com>", "<c-2026-000042.3@help.example.com>"]


def test_the_sender_is_the_bare_address_lower_cased_with_its_display_name_apart():
    email = sample("reply_with_quoted_history")
    assert (email.sender, email.sender_name) == ("sam.okafor@example.com", "Sam Okafor")
    assert email.to == ["case+7f3k9q2m@help.example.com"]
    assert email.received_at == datetime(2026, 3, 10, 9, 14, 2, tzinfo=UTC)


def test_a_person_s_reply_is_not_automated():
    email = sample("reply_with_quoted_history")
    assert (email.automated, email.automated_reason, email.bounce_recipients) == (None, None, [])


def test_the_reply_token_is_also_found_in_cc_or_delivered_to():
    assert parse_email(message("Cc: case+ab12cd@help.example.com")).reply_token == "ab12cd"
    assert parse_email(message("Delivered-To: case+ab12cd@help.example.com")).reply_token == "ab12cd"
    assert parse_email(message()).reply_token is None


def test_a_message_that_starts_with_quoted_lines_keeps_only_the_unquoted_lines_as_text():
    email = parse_email(message(body="> Did it arrive?\r\nNo, it never came.\r\n"))
    assert (email.text, email.quoted) == ("No, it never came.", "> Did it arrive?")


def test_an_html_reply_drops_the_gmail_quote_from_the_text():
    html = (
        '<div dir="ltr">Nothing yet.</div><div class="gmail_quote"><div class="gmail_attr">'
        "On Mon, 9 Mar 2026 at 17:02, Care &lt;case+x1@help.example.com&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">We are sorry.</blockquote></div>'
    )
    email = parse_email(message("Content-Type: text/html; charset=utf-8", body=html))
    assert email.text == "Nothing yet."
    assert "> We are sorry." in email.quoted


# --- replies as real mail clients write them (samples/email/replies: <name>.eml and its .text) --

REPLIES = sorted((SAMPLES / "replies").glob("*.eml"))

#: A sentence of each reply's quoted history: it belongs in `quoted`, never in `text`.
#: None for a message that answers nothing.
HISTORY = {
    "apple_html_nested_blockquotes": "Here is a voucher for £10",
    "apple_mail_fr": "Nous avons replanifié la livraison",
    "apple_mail_iphone": "We are sorry the parcel was left outside.",
    "fresh_complaint_with_a_from_line": None,
    "gmail_de": "wir haben Ihre Rechnung geprüft.",
    "gmail_en": "We have rebooked the collection",
    "mutt_interleaved_signature": "> What time was the parcel delivered?",
    "outlook_de": "bitte senden Sie uns die Aufzeichnung des Datenloggers.",
    "outlook_en": "Could you send us photos of the damage?",
    "outlook_fr": "Pouvez-vous nous dire ce qui manque dans le colis ?",
    "outlook_html_only": "the address could not be found.",
    "outlook_mac": "Our records show the parcel was signed for.",
    "outlook_original_message": "We have passed your report to the depot manager.",
    "outlook_web_html_only": "Can you tell us what happened?",
    "thunderbird_de_signature": "laut Zusteller wurde Ihr Paket bei einem Nachbarn abgegeben.",
    "thunderbird_html_de_signature": "wir haben Ihnen eine Ersatzlieferung geschickt.",
    "webmail_html_fr_list": "Pouvez-vous nous décrire le problème ?",
    "webmail_html_table_links": None,
}


def test_every_reply_sample_has_its_expected_text_and_a_history_sentence():
    assert sorted(p.stem for p in REPLIES) == sorted(HISTORY)
    assert all(p.with_suffix(".text").is_file() for p in REPLIES)


@pytest.mark.parametrize("path", REPLIES, ids=lambda p: p.stem)
def test_a_reply_from_each_mail_client_gives_exactly_the_customer_s_new_text(path):
    assert parse_email(path.read_bytes()).text == path.with_suffix(".text").read_text(encoding="utf-8").rstrip("\n")


@pytest.mark.parametrize("path", REPLIES, ids=lambda p: p.stem)
def test_a_reply_from_each_mail_client_keeps_its_quoted_history_apart(path):
    email, sentence = parse_email(path.read_bytes()), HISTORY[path.stem]
    if sentence is None:
        assert email.quoted == ""
    else:
        assert sentence in " ".join(email.quoted.split())
        assert sentence.lstrip("> ") not in email.text


def test_answers_written_between_quoted_questions_are_the_new_text_and_the_questions_the_quoted():
    body = "On Tue, 24 Mar 2026, Care wrote:\r\n> When?\r\n\r\nAt 13:02.\r\n\r\n> Home?\r\n\r\nYes.\r\n"
    email = parse_email(message(body=body))
    assert (email.text, email.quoted) == ("At 13:02.\n\nYes.", "On Tue, 24 Mar 2026, Care wrote:\n> When?\n> Home?")


def test_a_complaint_s_own_from_and_date_lines_are_not_taken_for_an_outlook_quote_header():
    body = "The sofa came damaged.\r\nFrom: Harlow depot\r\nDate: 27 March\r\n\r\nPlease call me.\r\n"
    email = parse_email(message(body=body))
    assert email.text.endswith("Please call me.") and email.quoted == ""


def test_html_table_cells_stay_apart_ordered_items_keep_their_numbers_and_links_their_address():
    html = (
        "<table><tr><th>Item</th><th>Qty</th></tr><tr><td>Belt</td><td>2</td></tr></table>"
        '<ol><li>refund</li><li>label</li></ol><p>See <a href="https://photos.example.net/r8">photo</a>, '
        '<a href="https://t.example.com/1">https://t.example.com/1</a>, <a href="mailto:a@b.c">me</a>.</p>'
    )
    email = parse_email(message("Content-Type: text/html; charset=utf-8", body=html))
    assert email.text == (
        "Item | Qty\nBelt | 2\n\n1. refund\n2. label\n\nSee photo (https://photos.example.net/r8), "
        "https://t.example.com/1, me."
    )


# --- bodies and encodings ---------------------------------------------------------------------


def test_an_html_only_message_becomes_readable_text():
    email = sample("html_only")
    assert email.text.startswith("Hello,\n\nThe lamp I ordered arrived with the glass shade broken – see")
    assert "- Order: 114-5523190-1234567\n- Delivered: 10 March" in email.text
    assert "replacement, not a refund.\nThank you,\nLucy Martin" in email.text
    assert "trackOpen" not in email.text and "margin" not in email.text and "<" not in email.text


def test_an_rfc_2047_subject_and_sender_name_are_decoded_and_the_latin_1_body_too():
    email = sample("rfc2047_subject")
    assert email.subject == "Réclamation : colis endommagé"
    assert email.sender_name == "Léa Dubois"
    assert email.sender == "lea.dubois@example.fr"
    assert "J'ai reçu mon colis ce matin, le carton était déchiré et le vase cassé." in email.text


def test_raw_utf_8_headers_are_read_as_utf_8():
    raw = message().replace(b"Subject: Parcel", "Subject: Colis abîmé".encode())
    assert parse_email(raw).subject == "Colis abîmé"


def test_a_body_in_an_unknown_charset_is_still_read():
    raw = message("Content-Type: text/plain; charset=x-unknown-9", body="caf\u00e9")
    assert parse_email(raw).text == "café"


def test_line_endings_do_not_matter():
    raw = (SAMPLES / "reply_with_quoted_history.eml").read_bytes()
    assert parse_email(raw.replace(b"\n", b"\r\n")) == parse_email(raw)


def test_a_date_without_a_zone_is_taken_as_utc_and_a_missing_date_is_none():
    assert parse_email(message().replace(b"+0000", b"-0000")).received_at.tzinfo is not None
    assert parse_email(message().replace(b"Date: Tue, 10 Mar 2026 09:14:02 +0000\r\n", b"")).received_at is None


# --- automated mail ---------------------------------------------------------------------------


def test_an_out_of_office_reply_is_an_automated_auto_reply():
    email = sample("out_of_office")
    assert email.automated is AutomatedKind.AUTO_REPLY
    assert email.automated_reason == "Auto-Submitted: auto-replied"


def test_a_gmail_vacation_responder_is_an_auto_reply_even_with_a_case_reply_token():
    # Gmail's vacation responder marks its replies with Auto-Submitted: auto-replied (RFC 3834)
    # and no Precedence; it answers the case address, so the token must not make it a reply.
    email = sample("gmail_vacation_responder")
    assert email.reply_token == "7f3k9q2m"
    assert email.automated is AutomatedKind.AUTO_REPLY


def test_a_delivery_status_notification_is_a_bounce_with_its_failed_recipient_and_status():
    email = sample("bounce_dsn")
    assert email.automated is AutomatedKind.BOUNCE
    assert email.automated_reason == "Content-Type: multipart/report; report-type=delivery-status"
    [recipient] = email.bounce_recipients
    assert (recipient.address, recipient.action, recipient.status) == ("sam.okafor@example.org", "failed", "5.1.1")
    assert recipient.diagnostic.startswith("smtp; 550 5.1.1 <sam.okafor@example.org>: Recipient")


def test_a_mailing_list_message_is_automated_list_mail():
    email = sample("mailing_list")
    assert email.automated is AutomatedKind.LIST
    assert email.automated_reason == "Precedence: list"


def test_a_person_s_outlook_message_asking_for_no_auto_reply_is_not_automated():
    email = sample("outlook_auto_response_suppress")
    assert email.automated is None
    assert email.no_auto_reply_requested is True
    assert email.text.endswith("until the delivery fee is refunded.\n\nRegards,\nJames")
    assert email.quoted.startswith("From: Customer Care <case+9w2hd7ra@help.example.com>\nSent:")


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("Auto-Submitted: auto-generated", AutomatedKind.OTHER),
        ('Auto-Submitted: Auto-Replied; owner-email="x@example.com"', AutomatedKind.AUTO_REPLY),
        ("X-Autoreply: yes", AutomatedKind.AUTO_REPLY),
        ("X-Autorespond: Out of office", AutomatedKind.AUTO_REPLY),
        ("Precedence: bulk", AutomatedKind.LIST),
        ("Precedence: junk", AutomatedKind.OTHER),
        ("Precedence: auto_reply", AutomatedKind.AUTO_REPLY),
        ("List-Id: <news.example.com>", AutomatedKind.LIST),
        ("List-Unsubscribe: <mailto:leave@example.com>", AutomatedKind.LIST),
        ("Return-Path: <>", AutomatedKind.BOUNCE),
    ],
)
def test_each_automated_mail_header_is_recognised(header, kind):
    email = parse_email(message(header))
    assert email.automated is kind
    assert email.automated_reason.lower().startswith(header.split(":")[0].lower())


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.net", "postmaster@example.org"])
def test_mail_from_the_mailer_daemon_or_postmaster_is_a_bounce(sender):
    email = parse_email(message().replace(b"sam@example.com", sender.encode()))
    assert email.automated is AutomatedKind.BOUNCE
    assert email.automated_reason == f"From: {sender}"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: no",
        "X-Auto-Response-Suppress: OOF, AutoReply",
        "Precedence: first-class",
        "Return-Path: <sam@example.com>",
    ],
)
def test_headers_that_do_not_mean_automated_leave_a_person_s_message_alone(header):
    assert parse_email(message(header)).automated is None


# --- bad input --------------------------------------------------------------------------------


def test_an_oversized_message_is_rejected_before_parsing():
    with pytest.raises(InvalidEmail, match=r"message is 2,001 bytes; the limit is 2,000"):
        parse_email(b"x" * 2001, max_bytes=2000)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "message is empty"),
        (b"\x00\xff\xfe garbage \x8f\n\n\x01\x02", "no header fields"),
        (b"Subject: hello\r\n\r\nbody", "no From header"),
        (b"From: nobody\r\n\r\nbody", "From header has no usable address"),
        ("From: a@b.c\r\n\r\n", "expected the raw message as bytes"),
    ],
)
def test_garbage_is_rejected_with_a_message_naming_the_problem(raw, problem):
    with pytest.raises(InvalidEmail, match=problem):
        parse_email(raw)


def test_random_bytes_truncations_and_mutations_give_an_email_or_invalid_email_never_a_crash():
    rng = random.Random(20260310)
    originals = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
    inputs = [rng.randbytes(rng.randint(1, 2000)) for _ in range(200)]
    for raw in originals:
        inputs += [raw[:cut] for cut in range(0, len(raw), 37)]
        for _ in range(40):
            mutated = bytearray(raw)
            for _ in range(rng.randint(1, 20)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            inputs.append(bytes(mutated))
    for raw in inputs:
        try:
            assert parse_email(raw).model_dump_json()  # and serialisable: no lone surrogates
        except InvalidEmail as exc:
            assert str(exc)
