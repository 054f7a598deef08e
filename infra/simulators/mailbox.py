"""The mailbox: a real SMTP server (aiosmtpd) that keeps what it receives, and a small web view of it.

``python -m infra.simulators.mailbox --port 8025 --smtp-port 2525``: notify sends to the SMTP
port; people open ``http://127.0.0.1:8025/`` to read the mail, tests read ``GET /messages``
(JSON: envelope, headers, text and HTML parts, the raw message). ``PUT /faults`` makes the server
answer the next messages with a temporary failure (451), so that retries are tested for real.
"""

from __future__ import annotations

import argparse
import html
import threading
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

app = FastAPI(title="Mailbox (SMTP sink)", version="1")
MESSAGES: list[dict] = []
LOCK = threading.Lock()
FAULTS = {"refuse": 0}


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refuse: int = Field(0, ge=0, description="Answer the next N messages with 451 (try again later).")


def read(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> dict:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    text = msg.get_body(preferencelist=("plain",))
    body_html = msg.get_body(preferencelist=("html",))
    return {"mail_from": mail_from, "rcpt_tos": rcpt_tos, "received_at": datetime.now(UTC).isoformat(),
            "headers": {k: str(v) for k, v in msg.items()}, "subject": str(msg.get("Subject", "")),
            "message_id": str(msg.get("Message-ID", "")), "to": str(msg.get("To", "")),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": body_html.get_content() if body_html is not None else None,
            "raw": raw.decode("utf-8", "replace")}


class Keeper:
    """aiosmtpd handler: keep every message, or refuse it while a fault is set."""

    async def handle_DATA(self, server, session, envelope) -> str:
        with LOCK:
            if FAULTS["refuse"] > 0:
                FAULTS["refuse"] -= 1
                return "451 4.3.0 Mailbox simulator: try again later"
            MESSAGES.append(read(envelope.original_content or envelope.content, envelope.mail_from,
                                 list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.get("/messages", summary="Every message received, oldest first (optionally only those to one address).")
async def messages(to: str | None = None) -> list[dict]:
    with LOCK:
        found = list(MESSAGES)
    return [m for m in found if to is None or to.lower() in (r.lower() for r in m["rcpt_tos"])]


@app.delete("/messages", status_code=204)
async def empty() -> None:
    with LOCK:
        MESSAGES.clear()


@app.put("/faults")
async def set_faults(faults: Faults) -> dict:
    with LOCK:
        FAULTS.update(faults.model_dump())
    return FAULTS


@app.get("/", response_class=HTMLResponse, summary="The mailbox, for people.")
async def view() -> HTMLResponse:
    with LOCK:
        found = list(reversed(MESSAGES))
    rows = "".join(
        f"<details><summary><b>{html.escape(m['subject'])}</b> to {html.escape(', '.join(m['rcpt_tos']))} "
        f"<small>{html.escape(m['received_at'])}</small></summary><pre>{html.escape(m['text'] or '')}</pre>"
        f"<details><summary>headers</summary><pre>{html.escape(chr(10).join(f'{k}: {v}' for k, v in m['headers'].items()))}"
        f"</pre></details></details><hr>" for m in found)
    return HTMLResponse(f"<!doctype html><title>Mailbox</title><h1>Mailbox ({len(found)})</h1>{rows or 'No mail yet.'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025, help="HTTP port of the view and API")
    parser.add_argument("--smtp-port", type=int, default=2525)
    args = parser.parse_args()
    smtp = Controller(Keeper(), hostname=args.host, port=args.smtp_port)
    smtp.start()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
