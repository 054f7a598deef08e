"""The building blocks of a pure domain: immutable values and an aggregate's ``decide``/``evolve``.

This module imports no I/O library (no store, broker, HTTP or telemetry client), and neither may
any service's domain module that builds on it: tests/unit/test_architecture.py checks both, by
importing each domain module in a fresh interpreter and looking at what came along.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from contracts.envelope import Event

S = TypeVar("S")


class Value(BaseModel):
    """Base of a pure domain's commands and states: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class Aggregate(Generic[S]):
    """A service's pure domain for one kind of stream: its initial state and two functions."""

    initial: S
    evolve: Callable[[S, Event], S]
    decide: Callable[[S, Any, datetime], list[Event]]

    def fold(self, events: list[Event]) -> S:
        return reduce(self.evolve, events, self.initial)
