"""The shapes of the request fields every API shares: bounded, never blank (pure: pydantic only,
so a domain's commands may use them; the path, header and query shapes are in services.kernel.web).

Stated once here, they reach the OpenAPI document, so a client (or a fuzzer) sees the rule, and the
handler never sees a value that would fail later, deep in an event or the store.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

#: The largest integer the store holds (BSON int64); a larger one must be refused at the edge.
INT64_MAX = 2**63 - 1
#: Something other than blanks somewhere (JSON Schema patterns match anywhere in the value).
NOT_BLANK = r"\S"

#: An id given in a body: one word, no blanks.
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
#: A name or a short line of text: not blank.
Line = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]


def text(max_length: int) -> Any:  # Annotated[str, ...]: a type form, which mypy cannot name
    """Free text of at most ``max_length`` characters that is not only blanks."""
    return Annotated[str, Field(min_length=1, max_length=max_length, pattern=NOT_BLANK)]
