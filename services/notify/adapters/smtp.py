"""Email out over real SMTP (aiosmtplib): hand one message to the relay, or say why not."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib


class SendFailed(Exception):
    """The message was not accepted; ``permanent`` (5xx) means retrying cannot help."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


class SmtpMailer:
    """Hands messages to an SMTP relay; one connection per message (notify sends few, and a
    connection held open would die silently between them)."""

    def __init__(self, host: str, port: int, username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.starttls, self.timeout_s = starttls, timeout_s

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(message, hostname=self.host, port=self.port, username=self.username,
                                  password=self.password, start_tls=self.starttls, timeout=self.timeout_s)
        except aiosmtplib.SMTPResponseException as exc:
            raise SendFailed(f"SMTP {self.host}:{self.port} answered {exc.code} {exc.message}",
                             permanent=500 <= exc.code < 600) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"SMTP {self.host}:{self.port}: {exc}") from None
