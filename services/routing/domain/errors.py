"""Routing's refusals: a stable code for the API and a message a person can act on."""

from __future__ import annotations

from services.kernel.errors import DomainError


class NotFound(DomainError):
    """An unknown agent, team or case (404); ``id`` is the one asked for."""

    code = "not_found"
    status = 404

    def __init__(self, kind: str, id_: str) -> None:
        super().__init__(f"There is no {kind} {id_!r}.")
        self.kind, self.id = kind, id_


class IllegalState(DomainError):
    """The command does not fit the case's current state (409)."""

    code = "illegal_state"

    def __init__(self, action: str, current: str, why: str = "") -> None:
        super().__init__(f"Cannot {action}: the case is {current}{'; ' + why if why else ''}.")
        self.current = current

    def extensions(self) -> dict[str, str]:
        return {"current_state": self.current}


class InvalidField(DomainError):
    """A field of the request breaks a rule; ``field`` names it for the page (422)."""

    code = "invalid_field"
    status = 422

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}.")
        self.field = field


class NeedsSupervisor(DomainError):
    """Allowed by policy only with a supervisor's approval (403 for an agent)."""

    code = "needs_supervisor"
    status = 403


class MissingField(DomainError):
    """A required field was left empty (422); ``field`` names it."""

    code = "missing_field"
    status = 422

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} is required: {rule}.")
        self.field = field
