"""The public event contracts of the complaint platform: one module per owning service's topic.

Importing ``contracts`` registers every public event in ``contracts.envelope.registry``.
"""

from contracts import (
    carrier,  # noqa: F401  (registers the carrier topic's events)
    intake,  # noqa: F401  (registers the intake topic's events)
    notify,  # noqa: F401  (registers the notify topic's events)
    routing,  # noqa: F401  (registers the routing topic's events)
)
from contracts.envelope import Envelope, Event, registry

TOPICS = {
    "intake": "complaints.intake.v1",
    "routing": "complaints.routing.v1",
    "carrier": "complaints.carrier.v1",
    "notify": "complaints.notify.v1",
}

__all__ = ["TOPICS", "Envelope", "Event", "registry"]
