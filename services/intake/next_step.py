"""What happens next on a case, and by when, in the customer's words: pure, from the case view.

The case page leads with it (issue 20): a person in distress reads one sentence that says what we
do next and when they hear from us, worked out from the case's state alone, so the complaint form
and the case page can never tell two stories.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: What the front door promises for a written complaint nobody has answered yet: a first answer
#: within a working day. A promise to the customer, not an SLA any service enforces (routing's
#: clocks are for partner teams), so it lives with the words that make it.
FIRST_ANSWER_WITHIN = timedelta(hours=24)
#: A call can be asked for when none is waiting or under way.
CALL_OVER = (None, "cancelled", "ended")


def next_step(view: dict, now: datetime) -> dict:
    """``{"state", "title", "detail", "by", "can_ask_for_call"}`` for the customer's case page.

    ``by`` (ISO 8601 or None) is when the customer hears from us at the latest, as far as the
    service that owns the fact can tell it: routing's estimated wait for a queued call, the partner
    team's promised (or SLA) time for a transferred case, the front door's first-answer promise.
    """
    callback = view.get("callback") or {}
    call_state = callback.get("state")
    status = view.get("status")
    closure = (view.get("closure") or {}).get("state")
    step = _call_step(callback, now) if call_state not in CALL_OVER else None
    if step is None:
        step = _case_step(view, status, closure)
    return {**step, "can_ask_for_call": call_state in CALL_OVER and status not in ("closed",)}


def _call_step(callback: dict, now: datetime) -> dict:
    state = callback["state"]
    if state == "queued":
        wait = callback.get("estimated_wait_s")
        since = _time(callback.get("since")) or now
        by = (since + timedelta(seconds=wait)).isoformat() if wait is not None else None
        place = (
            f"You are number {callback['position']} in the queue for a call"
            if callback.get("position")
            else "You are in the queue for a call"
        )
        return {
            "state": "call_queued",
            "title": f"{place}.",
            "by": by,
            "detail": "Keep your phone close: the next free agent who can help calls you.",
        }
    if state == "dialling":
        return {
            "state": "call_dialling",
            "title": "We are calling you now.",
            "by": callback.get("since"),
            "detail": "Keep your phone close. If you miss the call we try again, then write to you.",
        }
    if state == "connected":
        return {
            "state": "call_connected",
            "title": "You are on the call with us.",
            "by": None,
            "detail": "The agent tells you what happens next before the call ends.",
        }
    return {
        "state": "call_requested",
        "title": "We have your request: an agent will call you shortly.",
        "by": None,
        "detail": "Keep your phone close.",
    }


def _case_step(view: dict, status: str | None, closure: str | None) -> dict:
    if status == "closed" or closure == "confirmed":
        return {
            "state": "closed",
            "title": "Your complaint is closed.",
            "by": None,
            "detail": "If the problem comes back, reply to our email or make a new complaint.",
        }
    if closure in ("asked", "closed_unconfirmed"):
        return {
            "state": "question",
            "title": "We think we have solved it: please tell us below.",
            "by": None,
            "detail": "Answer \u201cIs your complaint closed?\u201d on this page or from our email.",
        }
    if status == "resolved" or closure == "answered":
        return {
            "state": "resolved",
            "title": "We have resolved your complaint: what we did is below.",
            "by": None,
            "detail": "We will ask you whether it is solved for you.",
        }
    if handed := view.get("handed_over"):
        return {
            "state": "with_partner",
            "by": handed["answer_by"],
            "title": "Your case is with the team that can act on it.",
            "detail": "They have everything you told us, so you will not have to repeat it. "
            "We will tell you what they did.",
        }
    filed = _time(view.get("filed_at"))
    by = (filed + FIRST_ANSWER_WITHIN).isoformat() if filed else None
    how = "email you" if (view.get("owner") or {}).get("email") else "contact you"
    return {
        "state": "written",
        "title": f"An agent will read your complaint and {how}.",
        "by": by,
        "detail": "If you would rather talk, ask for a call below.",
    }


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
