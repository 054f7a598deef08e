"""Email out over real SMTP (aiosmtplib), with a commit point just before the end of the data.

An SMTP server delivers a message only once it has read the end-of-data line (``.``); a
connection that drops before it leaves nothing behind (RFC 5321 §4.1.1.4). So the caller's
``before_commit`` runs after the server said 354 and just before the message and its final
``.`` are written: a crash before it sends nothing (the message is sent again later), a crash
after it has, in all likelihood, sent it (it is not sent again). That moves the one window
where a crash could send an email twice to before the point of no return, where it costs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from services.kernel import meters

START_INPUT, COMPLETED = 354, 250


class SendFailed(Exception):
    """The message was not accepted; ``permanent`` (5xx) means retrying cannot help."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


async def _nothing() -> None:
    return None


class SmtpMailer:
    """Hands messages to an SMTP relay; one connection per message (notify sends few, and a
    connection held open would die silently between them)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.starttls, self.timeout_s = starttls, timeout_s

    async def send(self, message: EmailMessage, before_commit: Callable[[], Awaitable[None]] = _nothing) -> None:
        """Hand ``message`` over; ``before_commit`` runs at the point of no return (see the module)."""
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            timeout=self.timeout_s,
        )
        outcome = "error"
        try:
            async with smtp:
                await smtp.mail(extract_sender(message) or "")
                for recipient in extract_recipients(message):
                    await smtp.rcpt(recipient)
                await self._data(smtp, flatten_message(message), before_commit)
            outcome = "sent"
        except aiosmtplib.SMTPResponseException as exc:
            outcome = "refused"
            raise SendFailed(
                f"SMTP {self.host}:{self.port} answered {exc.code} {exc.message}", permanent=500 <= exc.code < 600
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"SMTP {self.host}:{self.port}: {exc}") from None
        finally:
            meters.outbound_calls.add(1, {"target": "smtp", "outcome": outcome})

    async def _data(self, smtp: aiosmtplib.SMTP, body: bytes, before_commit: Callable[[], Awaitable[None]]) -> None:
        # aiosmtplib's data() writes the message and its end in one go, with no moment between;
        # this is its execute_data_command, split at that moment.
        started = await smtp.execute_command(b"DATA")
        if started.code != START_INPUT:
            raise aiosmtplib.SMTPDataError(started.code, started.message)
        payload = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(body)) + b".\r\n"
        try:
            await before_commit()
        except BaseException:
            smtp.close()  # dropped before the end of data: the server delivers nothing
            raise
        protocol = smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("the server closed the connection")
        protocol._response_pending = True  # as execute_data_command marks it before writing
        protocol.write(payload)
        done = await protocol.read_response(timeout=self.timeout_s)
        if done.code != COMPLETED:
            raise aiosmtplib.SMTPDataError(done.code, done.message)
