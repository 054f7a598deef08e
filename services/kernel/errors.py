"""Refusals people can act on: one family of errors every service's domain raises (pure, no I/O).

Each kind says once which HTTP status it answers with; ``services.kernel.web`` turns any of them
into one RFC 9457 problem-details answer, so a service declares no exception handler of its own.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A command that cannot be carried out; ``code`` is stable, the message is for people.

    ``status`` is the HTTP status the refusal answers with (409 unless a kind says otherwise);
    ``field`` names the request field at fault, so a page can show the message beside it.
    """

    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 409
    field: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extensions(self) -> dict[str, Any]:
        """Members a kind adds to its problem details (e.g. ``current_state``)."""
        return {}


class NotFoundError(DomainError):
    """Something the request names does not exist (or is not the caller's to see): 404."""

    code = "not_found"
    status = 404


class InvalidInput(DomainError):
    """A request field breaks a rule only the application can check (an unknown order): 422."""

    code = "invalid_field"
    status = 422

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


class TooMany(DomainError):
    """A limit was reached; ``retry_after_s`` says when to try again: 429."""

    code = "too_many"
    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """Another system we need (the order system) does not answer: 503, try again shortly."""

    code = "unavailable"
    status = 503
    retry_after_s = 5
