"""Social webhook payloads: a post or direct message becomes a SocialPost, or a 422 naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.adapters.social import ORDER_ID_IN_TEXT, Platform, PostKind, SocialPost


def payload(**changes) -> dict:
    base = {
        "platform": "x",
        "kind": "post",
        "handle": "@sam_okafor",
        "post_id": "1899012345678901234",
        "text": "@ShopHelp my parcel says delivered but it isn't here",
        "posted_at": "2026-03-10T09:14:02Z",
    }
    return {**base, **changes}


def rejected_field(**changes) -> str:
    with pytest.raises(ValidationError) as caught:
        SocialPost.model_validate(payload(**changes))
    return ".".join(map(str, caught.value.errors()[0]["loc"]))


def test_a_post_is_read_with_its_handle_stored_without_the_at():
    post = SocialPost.model_validate(payload(reply_to_id="1899011111111111111"))
    assert (post.platform, post.kind, post.handle) == (Platform.X, PostKind.POST, "sam_okafor")
    assert post.reply_to_id == "1899011111111111111"
    assert post.posted_at.tzinfo is not None


def test_a_direct_message_on_instagram_is_accepted():
    post = SocialPost.model_validate(payload(platform="instagram", kind="direct_message", handle="lea.dubois"))
    assert (post.platform, post.kind) == (Platform.INSTAGRAM, PostKind.DIRECT_MESSAGE)


def test_an_order_number_pasted_into_the_text_becomes_the_order_id():
    post = SocialPost.model_validate(payload(text="Order 114-5523190-1234567 never came, second time!"))
    assert post.order_id == "114-5523190-1234567"


def test_an_order_id_given_explicitly_wins_over_one_in_the_text():
    post = SocialPost.model_validate(payload(text="see 114-5523190-1234567", order_id="ord-114-5523190"))
    assert post.order_id == "ord-114-5523190"


@pytest.mark.parametrize(
    "text",
    [
        "call 0114-5523190-1234567",
        "ref 114-5523190-12345678",
        "tracking 1Z999AA10123456784",
        "no order here",
        "١١٤-٥٥٢٣١٩٠-١٢٣٤٥٦٧",
    ],
)
def test_text_without_a_3_7_7_digit_order_number_leaves_the_order_id_empty(text):
    assert ORDER_ID_IN_TEXT.search(text) is None
    assert SocialPost.model_validate(payload(text=text)).order_id is None


def test_the_post_is_frozen():
    post = SocialPost.model_validate(payload())
    with pytest.raises(ValidationError):
        post.text = "changed"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"platform": "myspace"}, "platform"),
        ({"kind": "story"}, "kind"),
        ({"handle": "@"}, "handle"),
        ({"handle": "-dash-first"}, "handle"),
        ({"handle": "two words"}, "handle"),
        ({"handle": "a" * 101}, "handle"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 5001}, "text"),
        ({"post_id": ""}, "post_id"),
        ({"posted_at": "2026-03-10T09:14:02"}, "posted_at"),
        ({"followers": 12}, "followers"),
    ],
)
def test_bad_payloads_are_rejected_naming_the_field(changes, field):
    assert rejected_field(**changes) == field


def test_every_field_is_described_with_an_example_for_the_generated_docs():
    for name, field in SocialPost.model_fields.items():
        assert field.description and field.examples, name
