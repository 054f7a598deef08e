"""The public events of the intake topic (``complaints.intake.v1``): what the front door records."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.envelope import Event, event

#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = r"^\+[1-9]\d{6,14}$"
#: A BCP 47 language tag, loosely: a language, then optional subtags (region, script, variant).
BCP47 = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


class Category(StrEnum):
    """What a complaint is about; routing picks the team from it.

    The complainant picks it from the list "does your complaint involve the following?".
    """

    DELIVERY_DRIVER_CONDUCT = "delivery_driver_conduct"
    PACKAGE_NOT_RECEIVED = "package_not_received"
    PART_OF_ORDER_MISSING = "part_of_order_missing"
    LATE_DELIVERY = "late_delivery"
    DAMAGED_ITEM = "damaged_item"
    WRONG_ADDRESS = "wrong_address"
    REFUND = "refund"
    ACCOUNT_LOCKED = "account_locked"
    SELLER_ISSUE = "seller_issue"
    OTHER = "other"


#: The wording the complaint page shows for each category, in the order it shows them.
CATEGORY_LABELS: dict[Category, str] = {
    Category.DELIVERY_DRIVER_CONDUCT: "A delivery driver's behaviour or driving",
    Category.PACKAGE_NOT_RECEIVED: "A package that never arrived",
    Category.PART_OF_ORDER_MISSING: "Items missing from an order",
    Category.LATE_DELIVERY: "A late delivery",
    Category.DAMAGED_ITEM: "A damaged item",
    Category.WRONG_ADDRESS: "A delivery to the wrong address",
    Category.REFUND: "A refund",
    Category.ACCOUNT_LOCKED: "A locked account",
    Category.SELLER_ISSUE: "A problem with a seller (or, for sellers, with a buyer)",
    Category.OTHER: "Something else",
}


class Channel(StrEnum):
    """How the complaint reached us; ``proactive`` means we opened it before anyone complained."""

    WEB = "web"
    EMAIL = "email"
    SOCIAL = "social"
    PHONE = "phone"
    PROACTIVE = "proactive"


class Complainant(BaseModel):
    """Who complains and how to reach them.

    A login is not required (a locked-out seller must still be able to complain), but at least
    one of the ids or contact ways must be given.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid",
        json_schema_extra={"anyOf": [{"required": [n]} for n in
                                     ("customer_id", "seller_id", "email", "phone")]},
    )

    customer_id: str | None = Field(default=None, description="Customer account id, if known.",
                                    examples=["cust-7781204"])
    seller_id: str | None = Field(default=None, description="Marketplace seller id, if the "
                                  "complainant is a seller.", examples=["sell-00311"])
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$",
                              description="Email address for replies and the closure question.",
                              examples=["sam.okafor@example.com"])
    phone: str | None = Field(default=None, pattern=E164,
                              description="Phone number in E.164, for callbacks.",
                              examples=["+447700900123"])
    display_name: str | None = Field(default=None, max_length=200,
                                     description="How agents address the complainant.",
                                     examples=["Sam Okafor"])

    @model_validator(mode="after")
    def _reachable(self) -> Complainant:
        # A complaint from nobody we can identify or answer could never be closed.
        if not (self.customer_id or self.seller_id or self.email or self.phone):
            raise ValueError("complainant needs a customer_id, seller_id, email or phone")
        return self


@event
class ComplaintFiled(Event):
    """Emitted once when a complaint is filed, on any channel; it opens the complaint."""

    type_name = "complaints.intake.ComplaintFiled"

    complaint_id: str = Field(min_length=1, description="Id of the new complaint; the Kafka key.",
                              examples=["c-2026-000042"])
    category: Category = Field(description="What the complaint is about.",
                               examples=[Category.DELIVERY_DRIVER_CONDUCT])
    description: str = Field(min_length=1, max_length=5000,
                             description="The complaint in the complainant's own words.",
                             examples=["The driver reversed onto the pavement and nearly hit me."])
    channel: Channel = Field(description="How the complaint reached us.", examples=[Channel.WEB])
    complainant: Complainant = Field(description="Who complains and how to reach them.",
                                     examples=[{"customer_id": "cust-7781204",
                                                "phone": "+447700900123"}])
    order_id: str | None = Field(default=None, description="The order concerned, if any.",
                                 examples=["ord-114-5523190"])
    tracking_numbers: list[str] = Field(default_factory=list,
                                        description="Carrier tracking numbers concerned.",
                                        examples=[["1Z999AA10123456784"]])
    filed_at: AwareDatetime = Field(description="When the complainant filed it.",
                                    examples=["2026-03-14T09:12:03Z"])


@event
class CallbackRequested(Event):
    """Emitted when a complainant asks to be called back.

    By the "push this and we will call you" button, or by an agent on the complainant's behalf.
    """

    type_name = "complaints.intake.CallbackRequested"

    complaint_id: str = Field(min_length=1, description="The complaint the call is about.",
                              examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="Id of this callback request.",
                             examples=["cb-2026-000107"])
    phone: str = Field(pattern=E164, description="Number to call, in E.164.",
                       examples=["+447700900123"])
    requested_at: AwareDatetime = Field(description="When the callback was asked for.",
                                        examples=["2026-03-14T09:12:05Z"])
    preferred_language: str = Field(default="en", pattern=BCP47,
                                    description="Language for the call, as a BCP 47 tag.",
                                    examples=["en-GB"])
