"""Signing keys rotate without logging anyone out: the first key of SIGNING_KEY signs, every listed
key verifies the tokens that name it by ``kid``, and a key taken off the list verifies nothing."""

from datetime import timedelta

import jwt
import pytest
from pydantic import ValidationError

from services.kernel import auth
from services.kernel.clock import OffsetClock
from services.routing.settings import RoutingSettings

OLD = "2026-06:" + "o" * 64
NEW = "2026-12:" + "n" * 64
HOUR = timedelta(hours=1)


def kid(token: str) -> str | None:
    return jwt.get_unverified_header(token).get("kid")


def test_a_token_carries_the_id_of_the_key_that_signed_it():
    assert kid(auth.sign({"sub": "agt-ana"}, OLD, HOUR)) == "2026-06"


def test_rotation_in_three_steps_logs_nobody_out():
    before = auth.sign({"sub": "agt-ana", "role": "agent"}, OLD, HOUR)
    # 1. the new key is listed after the old one: it verifies, the old key still signs
    listed = f"{OLD},{NEW}"
    assert auth.verify(before, listed)["sub"] == "agt-ana"
    assert kid(auth.sign({"sub": "agt-ana"}, listed, HOUR)) == "2026-06"
    # 2. the new key moves first: new tokens carry its id, the old key's tokens still verify
    swapped = f"{NEW},{OLD}"
    after = auth.sign({"sub": "agt-priya", "role": "agent"}, swapped, HOUR)
    assert kid(after) == "2026-12"
    assert auth.verify(before, swapped)["sub"] == "agt-ana"
    assert auth.verify(after, swapped)["sub"] == "agt-priya"
    # 3. once the old key's longest-lived token has expired, the old key goes
    assert auth.verify(after, NEW)["sub"] == "agt-priya"


def test_a_token_of_a_removed_key_is_refused():
    before = auth.sign({"sub": "agt-ana"}, OLD, HOUR)
    with pytest.raises(auth.InvalidToken, match="not .or no longer. accepted"):
        auth.verify(before, NEW)


def test_a_token_naming_a_listed_kid_but_signed_with_another_secret_is_refused():
    forged = jwt.encode({"sub": "agt-ana", "exp": 4102444800}, "f" * 64, algorithm="HS256", headers={"kid": "2026-12"})
    with pytest.raises(auth.InvalidToken, match="Signature verification failed"):
        auth.verify(forged, f"{NEW},{OLD}")


def test_a_token_from_before_key_ids_still_verifies_against_the_key_that_signed_it():
    bare = "b" * 64
    legacy = jwt.encode({"sub": "cust", "exp": 4102444800}, bare, algorithm="HS256")
    assert auth.verify(legacy, f"{NEW},{auth.key_ring(bare).signing_kid}:{bare}")["sub"] == "cust"
    assert auth.verify(legacy, bare)["sub"] == "cust"


def test_a_case_s_reply_address_made_with_the_old_key_still_finds_its_case_while_the_key_is_listed():
    address = auth.reply_token("c-42", OLD)
    assert auth.complaint_of_reply_token(address, f"{NEW},{OLD}") == "c-42"
    assert auth.complaint_of_reply_token(address, NEW) is None
    assert auth.reply_token("c-42", f"{NEW},{OLD}") == auth.reply_token("c-42", NEW)


@pytest.mark.parametrize(
    "value, said",
    [
        (f"{NEW},{'x' * 64}", "with several keys, each must be <kid>:<secret>"),
        (f"{NEW},{NEW}", "key id '2026-12' is listed twice"),
        ("2026-12:", "key '2026-12' has no secret"),
    ],
)
def test_a_malformed_key_ring_is_refused_at_start_naming_signing_key(value, said):
    with pytest.raises(ValidationError, match=f"SIGNING_KEY: {said}"):
        RoutingSettings(signing_key=value)


@pytest.mark.parametrize(
    "value, said",
    [
        (f"{NEW},2026-01:short", "SIGNING_KEY key '2026-01' must be a real secret of at least 32 characters"),
        (f"{NEW},dev:dev-only-signing-key-change-me-0123456789", "SIGNING_KEY key 'dev' must be a real secret"),
    ],
)
def test_production_refuses_a_weak_or_development_key_anywhere_in_the_ring(value, said):
    with pytest.raises(ValidationError, match=said):
        RoutingSettings(
            environment="production",
            signing_key=value,
            order_system_url="https://orders.shop.co.uk",
            cors_origins="https://help.shop.co.uk",
        )


def test_a_token_expires_by_the_clock_it_is_checked_against():
    """A server's clock can be moved on (services/kernel/clock.py): a token expires by it, not by
    the wall clock, so no test waits for a session to end."""
    clock = OffsetClock()
    token = auth.sign({"sub": "agt-ana", "role": "agent"}, "k1:" + "a" * 32, timedelta(minutes=5))

    assert auth.verify(token, "k1:" + "a" * 32, clock.now())["sub"] == "agt-ana"
    clock.advance(timedelta(minutes=6))
    with pytest.raises(auth.InvalidToken, match="expired"):
        auth.verify(token, "k1:" + "a" * 32, clock.now())
