"""The shapes of the request fields every API shares: bounded, never blank (pure, no I/O).

Stated once here, they reach the OpenAPI document, so a client (or a fuzzer) sees the rule, and the
handler never sees a value that would fail later, deep in an event or the store.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query
from pydantic import Field

#: The largest integer the store holds (BSON int64); a larger one must be refused at the edge.
INT64_MAX = 2**63 - 1
#: Something other than blanks somewhere (JSON Schema patterns match anywhere in the value).
NOT_BLANK = r"\S"

#: An id given in a body: one word, no blanks.
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
#: A name or a short line of text: not blank.
Line = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
#: An id in a URL path.
PathId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^\S+$", description="An id, as given.")]

#: The ``Authorization`` header: ``Bearer <token>``.
Authorization = Annotated[str | None, Header(max_length=4096, description="`Bearer <token>`.")]
#: A signed token in the query string (a link's).
TokenQuery = Annotated[str | None, Query(max_length=4096, description="The signed token of a link.")]


def text(max_length: int):
    """Free text of at most ``max_length`` characters that is not only blanks."""
    return Annotated[str, Field(min_length=1, max_length=max_length, pattern=NOT_BLANK)]
