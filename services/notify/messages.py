"""Notify's message templates: each one rendered with sample data at start-up, then built as MIME.

Every template is rendered at start-up with ``SAMPLES`` under ``StrictUndefined``: a template
that uses a variable its sample lacks (and so its callers would not pass) stops the service
before it serves, instead of failing at send time for a real complainant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, meta, select_autoescape

from services.notify.loop_guard import RequiredAction

TEMPLATES = Path(__file__).parent / "templates" / "mail"

_CLOSURE = {
    "display_name": "Sam",
    "complaint_id": "c-2026-000042",
    "recap": "We reported the driver to our logistics partner.",
    "next_steps": ["The partner team will tell you what they did within 5 working days."],
    "yes_url": "https://help.example.com/closure/answer?token=t",
    "no_url": "https://help.example.com/closure/answer?token=t",
    "expires_at": "21 March 2026",
}

#: Sample data per template: the variables its callers pass. What a template needs beyond these
#: fails start-up. ``required_action`` is what the message asks of its reader (the loop guard's).
SAMPLES: dict[str, dict] = {
    "closure_question": _CLOSURE,
    "closure_reminder": _CLOSURE,
    "outcome": {
        "display_name": "Sam",
        "complaint_id": "c-2026-000042",
        "outcome": "We spoke to the driver and retrained them.",
    },
    "callback_missed": {"display_name": "Sam", "complaint_id": "c-2026-000042", "attempts": 3},
    "verification_code": {"code": "481516", "expires_at": "09:25 UTC"},
    "seller_login_reminder": {"display_name": "Lena", "login_url": "https://sellers.example.com/login"},
    "receipt": {
        "display_name": "Sam",
        "reference": "7WN9-R42V",
        "case_url": "https://help.example.com/complaints/c-2026-000042?token=t",
    },
}
ACTIONS: dict[str, RequiredAction] = {
    "closure_question": RequiredAction.CLICK_LINK,
    "closure_reminder": RequiredAction.CLICK_LINK,
    "outcome": RequiredAction.NONE,
    "callback_missed": RequiredAction.REPLY,
    "verification_code": RequiredAction.ENTER_CODE,
    "seller_login_reminder": RequiredAction.LOG_IN,
    "receipt": RequiredAction.NONE,
}
#: Templates with an SMS part: only these may switch to SMS when email cannot be used.
SMS_TEMPLATES = frozenset({"callback_missed", "verification_code", "receipt"})
#: Templates other systems may ask for through the notification-request API (the rest are ours).
REQUESTABLE = frozenset({"seller_login_reminder"})


class TemplateBroken(RuntimeError):
    """A template fails with its sample data: the service must not start."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    sms: str | None


class Templates:
    """The mail templates (``<name>.subject``, ``.txt``, ``.html``, optional ``.sms``)."""

    def __init__(self, folder: Path = TEMPLATES, samples: dict[str, dict] = SAMPLES) -> None:
        self.samples = samples
        self._text = Environment(
            loader=FileSystemLoader(folder), undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self._html = Environment(
            loader=FileSystemLoader(folder),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html"], default=True),
        )
        self.folder = folder

    def check(self) -> None:
        """Render every template with its sample; raise ``TemplateBroken`` naming the first fault."""
        for name in sorted(self.samples):
            try:
                if (self.render(name, self.samples[name]).sms is None) == (name in SMS_TEMPLATES):
                    raise TemplateBroken(
                        f"template {name}: an SMS part is {'missing' if name in SMS_TEMPLATES else 'not declared in SMS_TEMPLATES'}"
                    )
            except TemplateError as exc:
                raise TemplateBroken(f"template {name}: {exc}") from None
            except OSError as exc:
                raise TemplateBroken(f"template {name}: {exc}") from None

    def variables(self, name: str) -> set[str]:
        """The variables a template uses (every part)."""
        found: set[str] = set()
        for part in self._parts(name):
            source = (self.folder / part).read_text()
            found |= meta.find_undeclared_variables(self._text.parse(source))
        return found

    def _parts(self, name: str) -> list[str]:
        return [
            f"{name}.{ext}" for ext in ("subject", "txt", "html", "sms") if (self.folder / f"{name}.{ext}").exists()
        ]

    def render(self, name: str, context: dict) -> Rendered:
        if name not in self.samples:
            raise TemplateError(f"there is no template {name!r}")
        parts = {p.rsplit(".", 1)[1]: p for p in self._parts(name)}
        for needed in ("subject", "txt"):
            if needed not in parts:
                raise TemplateError(f"{name}.{needed} is missing")
        html = self._html.get_template(parts["html"]).render(context) if "html" in parts else None
        sms = self._text.get_template(parts["sms"]).render(context).strip() if "sms" in parts else None
        return Rendered(
            subject=self._text.get_template(parts["subject"]).render(context).strip(),
            text=self._text.get_template(parts["txt"]).render(context),
            html=html,
            sms=sms,
        )


def build_email(
    rendered: Rendered,
    *,
    message_id: str,
    sender: str,
    sender_name: str,
    to: str,
    reply_to: str | None,
    in_reply_to: str | None,
    sent_at: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative email (text, then HTML) with threading and automation headers."""
    msg = EmailMessage()
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(sent_at or datetime.now(UTC))
    msg["From"] = formataddr((sender_name, sender))
    msg["To"] = to
    msg["Subject"] = rendered.subject
    if reply_to:
        msg["Reply-To"] = reply_to
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    # RFC 3834: tells auto-responders (out-of-office) not to answer, so no mail loop starts.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(rendered.text)
    if rendered.html:
        msg.add_alternative(rendered.html, subtype="html")
    return msg
