"""Reads a raw RFC 5322 message, as mail providers' inbound webhooks deliver it, into an InboundEmail."""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from enum import StrEnum
from html.parser import HTMLParser

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.kernel.clock import as_utc

#: The per-case reply address notify sends from: ``case+<token>@<any domain>``. The token is kept as
#: written; some mail systems lower-case local parts, so notify should mint lower-case tokens.
REPLY_ADDRESS = re.compile(r"^case\+([A-Za-z0-9][A-Za-z0-9._-]{0,127})@[^@\s]+$", re.IGNORECASE)


class InvalidEmail(ValueError):
    """The bytes are not a message we can read; the text names the problem (maps to a 4xx)."""


class AutomatedKind(StrEnum):
    """Why a message was written by software rather than a person; none of them opens a case."""

    AUTO_REPLY = "auto_reply"  # out-of-office, vacation responder
    BOUNCE = "bounce"  # delivery status notification, mailer-daemon
    LIST = "list"  # mailing list or bulk distribution
    OTHER = "other"  # any other machine-generated mail (Auto-Submitted: auto-generated, ...)


class BounceRecipient(BaseModel):
    """One recipient block of an RFC 3464 delivery status notification."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(description="Final-Recipient address, lower-cased.", examples=["sam.okafor@example.org"])
    action: str | None = Field(
        default=None, description="failed, delayed, delivered, relayed or expanded.", examples=["failed"]
    )
    status: str | None = Field(
        default=None, description="RFC 3463 status code; 5.x.x is permanent, 4.x.x transient.", examples=["5.1.1"]
    )
    diagnostic: str | None = Field(
        default=None,
        description="Diagnostic-Code, as the remote server gave it.",
        examples=["smtp; 550 5.1.1 User unknown"],
    )


class InboundEmail(BaseModel):
    """An inbound email as intake needs it: who, what, which case it answers, and whether a person wrote it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str | None = Field(
        description="Message-ID with its angle brackets; None if absent.", examples=["<CAJ8r1x=Q2@mail.gmail.com>"]
    )
    sender: str = Field(description="From address, lower-cased.", examples=["sam.okafor@example.com"])
    sender_name: str | None = Field(description="From display name, decoded.", examples=["Sam Okafor"])
    to: list[str] = Field(description="To addresses, lower-cased.", examples=[["case+7f3k9q2m@help.example.com"]])
    subject: str = Field(
        description="Subject, RFC 2047 decoded; empty if absent.", examples=["Re: Your complaint c-2026-000042"]
    )
    text: str = Field(
        description="The new text of the message: plain-text body (or text made from "
        "the HTML), with quoted reply history moved to `quoted`.",
        examples=["Still nothing arrived. Can someone call me?"],
    )
    quoted: str = Field(
        description='Quoted history cut from the body ("On ... wrote:" and below, "> " lines).',
        examples=["On Tue, 10 Mar 2026 ... wrote:\n> We are sorry"],
    )
    in_reply_to: str | None = Field(
        description="First Message-ID of In-Reply-To.", examples=["<c-2026-000042.3@help.example.com>"]
    )
    references: list[str] = Field(
        description="Message-IDs of References, oldest first.", examples=[["<c-2026-000042.1@help.example.com>"]]
    )
    reply_token: str | None = Field(
        description="Token of a case+<token>@ address in To, Cc or Delivered-To; threads the message onto its case.",
        examples=["7f3k9q2m"],
    )
    received_at: AwareDatetime | None = Field(
        description="The Date header (a date without a zone is taken as UTC); None if absent or unreadable.",
        examples=["2026-03-10T09:14:02Z"],
    )
    automated: AutomatedKind | None = Field(
        description="Set when software wrote the message.", examples=[AutomatedKind.AUTO_REPLY]
    )
    automated_reason: str | None = Field(
        description="The header or part that gave it away.", examples=["Auto-Submitted: auto-replied"]
    )
    bounce_recipients: list[BounceRecipient] = Field(
        description="Recipient blocks of a delivery status notification; empty otherwise.",
        examples=[[{"address": "sam.okafor@example.org", "action": "failed", "status": "5.1.1"}]],
    )
    no_auto_reply_requested: bool = Field(
        description="The sender asked not to be auto-replied to (X-Auto-Response-Suppress: All, OOF "
        "or AutoReply). Says nothing about whether a person wrote it.",
        examples=[False],
    )

    @model_validator(mode="after")
    def _reason_goes_with_kind(self) -> InboundEmail:
        if (self.automated is None) != (self.automated_reason is None):
            raise ValueError("automated and automated_reason are set together or not at all")
        return self


def parse_email(raw: bytes, max_bytes: int = 1_000_000) -> InboundEmail:
    """Read a raw RFC 5322 message; raise InvalidEmail naming the problem if it cannot be read."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise InvalidEmail(f"expected the raw message as bytes, got {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise InvalidEmail(f"message is {len(raw):,} bytes; the limit is {max_bytes:,}")
    if not bytes(raw).strip():
        raise InvalidEmail("message is empty")
    try:
        return _read(BytesParser(policy=policy.default).parsebytes(bytes(raw)))
    except InvalidEmail:
        raise
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        raise InvalidEmail(f"message does not fit InboundEmail ({fields})") from exc
    except Exception as exc:
        # The stdlib parser is lenient but has raised on hostile headers before; whatever the bytes,
        # the webhook must answer with a 4xx naming the problem, never a 500.
        raise InvalidEmail(f"message could not be decoded: {type(exc).__name__}: {exc}") from exc


def _read(msg: EmailMessage) -> InboundEmail:
    if not msg.keys():
        raise InvalidEmail("not an RFC 5322 message: no header fields")
    sender = _first_address(msg, "From")
    text, quoted = _split_quoted(_body_text(msg))
    kind_reason = _automated(msg, sender[1])
    return InboundEmail(
        message_id=next(iter(_message_ids(_header(msg, "Message-ID"))), None),
        sender=sender[1].lower(),
        sender_name=sender[0] or None,
        to=[addr.lower() for _, addr in _addresses(msg, "To")],
        subject=_header(msg, "Subject") or "",
        text=text,
        quoted=quoted,
        in_reply_to=next(iter(_message_ids(_header(msg, "In-Reply-To"))), None),
        references=_message_ids(_header(msg, "References")),
        reply_token=_reply_token(msg),
        received_at=_date(msg),
        automated=kind_reason[0] if kind_reason else None,
        automated_reason=kind_reason[1] if kind_reason else None,
        bounce_recipients=_bounce_recipients(msg),
        no_auto_reply_requested=_asks_no_auto_reply(msg),
    )


# --- headers ----------------------------------------------------------------------------------


def _clean(value: str) -> str:
    # Raw 8-bit bytes the parser could not decode come back as lone surrogates, which no JSON
    # encoder accepts; most such mail is UTF-8 (RFC 6532), so decode it that way, replacing the rest.
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _fields(msg: EmailMessage, name: str) -> list[str]:
    """Every field called ``name``, decoded; a field the structured parser chokes on is kept raw."""
    found = []
    for key, raw in msg.raw_items():
        if key.lower() != name.lower():
            continue
        try:
            value = msg.policy.header_fetch_parse(key, raw)
        except Exception:
            # CPython's header parser raises IndexError on some malformed ids and addresses; one
            # bad Message-ID must not cost the customer's whole message.
            value = re.sub(r"\r?\n(?=[ \t])", "", raw)
        found.append(value)
    return found


def _header(msg: EmailMessage, name: str) -> str | None:
    values = _fields(msg, name)
    return _clean(str(values[0])).strip() if values else None


def _addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    values = [_clean(str(v)) for v in _fields(msg, name)]
    return [(n, a) for n, a in getaddresses(values) if "@" in a]


def _first_address(msg: EmailMessage, name: str) -> tuple[str, str]:
    value = _header(msg, name)
    if not value:
        raise InvalidEmail(f"no {name} header")
    found = _addresses(msg, name)
    if not found:
        raise InvalidEmail(f"{name} header has no usable address: {value[:100]!r}")
    return found[0]


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = re.findall(r"<([^<>\s]+)>", value) or [t for t in value.split() if "@" in t]
    return [f"<{i.strip('<>')}>" for i in found]


def _reply_token(msg: EmailMessage) -> str | None:
    for name in ("To", "Cc", "Delivered-To"):
        for _, addr in _addresses(msg, name):
            if match := REPLY_ADDRESS.match(addr):
                return match.group(1)
    return None


def _date(msg: EmailMessage) -> datetime | None:
    stamp = getattr(next(iter(_fields(msg, "Date")), None), "datetime", None)
    if stamp is None:
        return None
    # RFC 5322 §3.3: "-0000" means UTC with no word on the sender's zone; the parser makes it naive.
    return as_utc(stamp)


# --- automated mail ---------------------------------------------------------------------------


def _automated(msg: EmailMessage, sender: str) -> tuple[AutomatedKind, str] | None:
    """Which kind of software wrote the message, and the header that says so; None for a person.

    Order matters: a DSN is a bounce even when it also carries Auto-Submitted, and a well-labelled
    auto-reply sent with a null reverse-path (as RFC 3834 §3.3 suggests) stays an auto-reply.
    """
    if (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower() == "delivery-status"
    ):
        return AutomatedKind.BOUNCE, "Content-Type: multipart/report; report-type=delivery-status"
    if sender.split("@")[0].lower() in {"mailer-daemon", "postmaster"}:
        return AutomatedKind.BOUNCE, f"From: {sender}"
    auto_submitted = (_header(msg, "Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":  # RFC 3834 §5: anything but "no" is automatic
        kind = AutomatedKind.AUTO_REPLY if auto_submitted == "auto-replied" else AutomatedKind.OTHER
        return kind, f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond"):
        value = _header(msg, name)
        if value is not None and value.lower() not in {"no", "false", "0"}:
            return AutomatedKind.AUTO_REPLY, f"{name}: {value}"
    for name in ("Precedence", "X-Precedence"):
        value = (_header(msg, name) or "").lower()
        if value in _PRECEDENCE:
            return _PRECEDENCE[value], f"{name}: {value}"
    for name in ("List-Id", "List-Unsubscribe"):
        if (value := _header(msg, name)) is not None:
            return AutomatedKind.LIST, f"{name}: {value[:100]}"
    return_path = _header(msg, "Return-Path")  # the first: the one the delivering MTA added
    if return_path is not None and return_path in {"<>", "< >", ""}:
        return AutomatedKind.BOUNCE, "Return-Path: <> (null reverse-path)"
    # X-Auto-Response-Suppress is deliberately not a signal. It is Exchange's request to the
    # *receiver* ("do not send me OOF/auto-replies", MS-OXCMAIL 2.1.3.2.20), and Outlook and
    # Exchange put it on ordinary messages people write; filtering on it drops real customer mail.
    # Automated senders that set it (GitHub, GitLab) also set Precedence or Auto-Submitted.
    return None


_PRECEDENCE = {
    "bulk": AutomatedKind.LIST,
    "list": AutomatedKind.LIST,
    "junk": AutomatedKind.OTHER,
    "auto_reply": AutomatedKind.AUTO_REPLY,
}


def _asks_no_auto_reply(msg: EmailMessage) -> bool:
    tokens = {t.strip().lower() for t in (_header(msg, "X-Auto-Response-Suppress") or "").split(",")}
    return bool(tokens & {"all", "oof", "autoreply"})


def _bounce_recipients(msg: EmailMessage) -> list[BounceRecipient]:
    found: list[BounceRecipient] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        # The parser gives a delivery-status body as one header block per field group: the first
        # describes the reporting MTA, each following one a recipient (RFC 3464 §2.2, §2.3).
        for block in part.get_payload()[1:]:
            recipient = _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
            if not recipient:
                continue
            found.append(
                BounceRecipient(
                    address=recipient.split(";", 1)[-1].strip().strip("<>").lower(),
                    action=(_header(block, "Action") or "").lower() or None,
                    status=_header(block, "Status") or None,
                    diagnostic=" ".join((_header(block, "Diagnostic-Code") or "").split()) or None,
                )
            )
    return found


# --- body -------------------------------------------------------------------------------------


def _body_text(msg: EmailMessage) -> str:
    plain = msg.get_body(preferencelist=("plain",))
    if plain is not None and (text := _part_text(plain)).strip():
        return text
    html = msg.get_body(preferencelist=("html",))
    return _html_to_text(_part_text(html)) if html is not None else ""


def _part_text(part: EmailMessage) -> str:
    try:
        text = part.get_content()
    except LookupError:  # an unknown charset name: read it as UTF-8 rather than lose the message
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return _clean(text).replace("\r\n", "\n").replace("\r", "\n")


class _HtmlText(HTMLParser):
    """Readable text from HTML: block elements become line breaks, blockquotes become "> " lines,
    table cells are kept apart by " | ", ordered lists are numbered and a link keeps its address."""

    BLOCKS = {
        "p",
        "div",
        "br",
        "tr",
        "table",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "pre",
        "section",
        "article",
        "header",
        "footer",
        "address",
        "dl",
        "dt",
        "dd",
    }
    HIDDEN = {"script", "style", "head", "title", "template", "noscript"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.quote_depth = 0
        self.lists: list[int | None] = []  # per open list: the last item's number, None if unordered
        self.cells = 0  # cells seen in the current table row
        self.link: tuple[str, int] | None = None  # the open link's address and where its text starts

    def newline(self) -> None:
        self.parts.append("\n" + "> " * self.quote_depth)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "body":
            self.hidden = 0  # an unclosed <head> must not hide the whole message
        elif tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "blockquote":
            self.quote_depth += 1
            self.newline()
        elif tag in ("ul", "ol"):
            self.lists.append(0 if tag == "ol" else None)
            self.newline()
        elif tag == "li":
            number = self.lists[-1] if self.lists else None
            self.newline()
            if number is None:
                self.parts.append("- ")
            else:
                self.lists[-1] = number + 1
                self.parts.append(f"{number + 1}. ")
        elif tag in ("td", "th"):
            # Cells run together otherwise ("Canvas belt2€ 17,30"): an order's lines lose their meaning.
            self.parts.append(" | " if self.cells else "")
            self.cells += 1
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            # Only web addresses: a customer's link to photos or tracking is evidence; mailto: is noise.
            self.link = (href, len(self.parts)) if href.startswith(("http://", "https://")) else None
        elif tag in self.BLOCKS:
            self.cells = 0 if tag == "tr" else self.cells
            self.newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
            self.newline()
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self.newline()
        elif tag == "a" and self.link is not None:
            href, start = self.link
            if href not in "".join(self.parts[start:]):
                self.parts.append(f" ({href})")
            self.link = None
        elif tag in self.BLOCKS and tag not in ("br", "tr"):  # a row ends where the next one starts
            self.newline()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data.replace("\xa0", " ")))


def _html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- quoted history ---------------------------------------------------------------------------

#: "On <date>, <name> wrote:" as mail clients write it (also French, German, Spanish); clients wrap
#: it over up to three lines, so it is matched on joined lines.
_ATTRIBUTION = re.compile(
    r"^(On\s.+\swrote|Le\s.+\sa\s+écrit|Am\s.+\sschrieb.*|El\s.+\sescribió)\s*:$", re.IGNORECASE | re.DOTALL
)
_ATTRIBUTION_STARTS = {"on ", "le ", "am ", "el "}
_ORIGINAL = re.compile(r"^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}$", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\*?(From|De|Von)\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\*?(Sent|Date|Envoyé|Gesendet)\s*:", re.IGNORECASE)
_OUTLOOK_TO = re.compile(r"^\*?(To|Subject|Cc|An|Betreff|À|Objet)\s*:", re.IGNORECASE)


def _outlook_header(lines: list[str], i: int) -> bool:
    # From, Sent and To or Subject: Outlook always writes all three, while a customer's own
    # "From: Harlow depot / Date: 27 March" in a fresh complaint has no To or Subject below.
    following = [n.strip() for n in lines[i + 1 : i + 6]]
    return (
        _OUTLOOK_FROM.match(lines[i].strip()) is not None
        and any(_OUTLOOK_SENT.match(n) for n in following[:3])
        and any(_OUTLOOK_TO.match(n) for n in following)
    )


def _history_starts(lines: list[str], begin: int = 0) -> tuple[int, int] | None:
    """Where the quoted history starts, and the line after its header; the end of the text
    for a header that quotes without "> " (Outlook's), since everything below it is history."""
    for i in range(begin, len(lines)):
        stripped = lines[i].strip()
        if _ORIGINAL.match(stripped) or _outlook_header(lines, i):
            return i, len(lines)
        if stripped[:3].lower() not in _ATTRIBUTION_STARTS:
            continue
        for span in (1, 2, 3):
            following = [n.strip() for n in lines[i : i + span]]
            if any(n.startswith(">") for n in following):
                break
            if _ATTRIBUTION.match(" ".join(following)):
                return i, i + span
    return None


def _answered_inline(lines: list[str], end: int) -> bool:
    """True when the "> " quote below an attribution is followed by the writer's own lines:
    answers written between the quoted questions (or below them), not history to cut."""
    quoted = False
    for k in range(end, len(lines)):  # stops at the first line of its own: linear over a whole message
        stripped = lines[k].strip()
        if stripped and not stripped.startswith(">"):
            return quoted
        quoted = quoted or bool(stripped)
    return False


def _split_quoted(body: str) -> tuple[str, str]:
    """Split a body into the new text and the quoted history, so agents see what is new first."""
    lines = body.split("\n")
    labels: set[int] = set()  # attributions of quotes answered inline: quoted, but no cut
    found = _history_starts(lines)
    while found is not None and found[1] < len(lines) and _answered_inline(lines, found[1]):
        labels.update(range(*found))
        found = _history_starts(lines, found[1])
    start = len(lines) if found is None else found[0]
    head = list(enumerate(lines[:start]))
    new = [line for k, line in head if k not in labels and not line.lstrip().startswith(">")]
    quoted = [line for k, line in head if k in labels or line.lstrip().startswith(">")] + lines[start:]
    text = re.sub(r"\n[_\-]{10,}\s*$", "", "\n".join(new).strip())  # Outlook's rule above "From:"
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)  # where answered quotes were cut out
    return text.strip(), "\n".join(quoted).strip()
