"""The social webhook payload: a post or direct message that mentions us, as intake accepts it."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

#: An order number pasted into the text: three, seven and seven ASCII digits joined by hyphens
#: ("114-5523190-1234567"), standing alone (``\b`` on both sides). ASCII only on purpose: ``\d``
#: would also take Arabic-Indic and other digits, which no order id contains.
ORDER_ID_IN_TEXT = re.compile(r"\b[0-9]{3}-[0-9]{7}-[0-9]{7}\b")


class Platform(StrEnum):
    """Where the post was made."""

    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    TIKTOK = "tiktok"
    OTHER = "other"


class PostKind(StrEnum):
    """A public post (answer in public, briefly) or a private direct message."""

    POST = "post"
    DIRECT_MESSAGE = "direct_message"


class SocialPost(BaseModel):
    """A post or direct message from a social platform; one of intake's channels into a complaint."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    platform: Platform = Field(description="The platform it came from.", examples=[Platform.X])
    kind: PostKind = Field(description="Public post or direct message.", examples=[PostKind.POST])
    handle: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^\w\S*$",
        description="The author's handle, without a leading @; starts with a letter, digit or underscore, no spaces.",
        examples=["sam_okafor"],
    )
    post_id: str = Field(
        min_length=1,
        max_length=200,
        description="The platform's id of the post or message.",
        examples=["1899012345678901234"],
    )
    text: str = Field(
        min_length=1,
        max_length=5000,
        description="What the author wrote.",
        examples=["@ShopHelp my parcel 114-5523190-1234567 says delivered but it isn't here"],
    )
    reply_to_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The post this one answers, if any (threads it).",
        examples=["1899011111111111111"],
    )
    posted_at: AwareDatetime = Field(
        description="When it was posted, with its zone.", examples=["2026-03-10T09:14:02Z"]
    )
    order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The order concerned; when not given, the first "
        "3-7-7 digit order number in the text (see ORDER_ID_IN_TEXT).",
        examples=["114-5523190-1234567"],
    )

    @field_validator("handle", mode="before")
    @classmethod
    def _without_at(cls, value: Any) -> Any:
        # People and platforms write handles both ways; we store them without the "@".
        return value.strip().removeprefix("@") if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _order_id_from_text(cls, data: Any) -> Any:
        # Customers paste the order number into the post more often than any form would ask for it.
        if isinstance(data, dict) and not data.get("order_id") and isinstance(data.get("text"), str):
            if match := ORDER_ID_IN_TEXT.search(data["text"]):
                return {**data, "order_id": match.group(0)}
        return data
