"""Issue 13: the limits an attacker meets at the front door, each attack through the public API on
the real broker and store: refused with a 429 that names the rule, nothing written, and the
legitimate path still open."""

from __future__ import annotations

from datetime import timedelta

from pymongo import AsyncMongoClient

from services.intake.domain import verification_stream
from services.intake.settings import IntakeSettings
from services.kernel import auth
from tests.integration.intake.conftest import running_intake, served_intake
from tests.integration.support import code_as_notify_reads_it

TOO_MANY_CALLBACKS = {
    "type": "urn:complaints:problem:too_many_callbacks",
    "title": "Too Many Requests",
    "status": 429,
    "code": "too_many_callbacks",
    "detail": "callback: too many requests; try again later",
    "message": "callback: too many requests; try again later",
}


def complaint(**overrides) -> dict:
    return {
        "category": "delivery_driver_conduct",
        "description": "The driver threw the parcel over the gate.",
        "complainant": {"email": "sam.okafor@example.com"},
        **overrides,
    }


def bearer(filed: dict) -> dict:
    return {"Authorization": f"Bearer {filed['access_token']}"}


async def appended(config: IntakeSettings) -> list[str]:
    """The types of the events intake appended (whichever replica did), in no particular order."""
    client = AsyncMongoClient(config.mongodb_url)
    try:
        return [
            event["type"].split(".")[-2]
            async for commit in client[config.database_name]["commits"].find({})
            for event in commit["events"]
        ]
    finally:
        await client.close()


async def call_me(intake, filed: dict, phone: str, forwarded_for: str):
    return await intake.post(
        f"/api/complaints/{filed['complaint_id']}/callback",
        json={"phone": phone},
        headers={**bearer(filed), "X-Forwarded-For": forwarded_for},
    )


async def test_a_forged_forwarded_address_from_an_untrusted_peer_does_not_escape_the_per_client_limit(intake_config):
    config = await intake_config(callbacks_per_client=2)
    async with served_intake(config) as intake:  # from 127.0.0.1, which uvicorn alone would trust
        cases = [(await intake.post("/api/complaints", json=complaint())).json() for _ in range(3)]
        answers = [
            await call_me(intake, filed, f"+4477009002{n:02}", f"198.51.100.{n}") for n, filed in enumerate(cases)
        ]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[-1].json() == TOO_MANY_CALLBACKS and int(answers[-1].headers["Retry-After"]) > 0
    assert (await appended(config)).count("CallbackRequested") == 2, "the refused request appended nothing"


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_limited(intake_config):
    config = await intake_config(callbacks_per_client=2, trusted_proxies="127.0.0.1")
    async with served_intake(config) as ingress:
        cases = [(await ingress.post("/api/complaints", json=complaint())).json() for _ in range(4)]
        # The caller writes what it likes on the left; the ingress appends whom it saw.
        answers = [
            await call_me(ingress, filed, f"+4477009002{n:02}", f"198.51.100.{n}, 203.0.113.9")
            for n, filed in enumerate(cases[:3])
        ]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[-1].json() == TOO_MANY_CALLBACKS
        another = await call_me(ingress, cases[3], "+447700900298", "198.51.100.1, 203.0.113.10")
        assert another.status_code == 202, "another caller behind the same ingress has its own limit"
    assert (await appended(config)).count("CallbackRequested") == 3


def as_customer(intake, sub: str = "cust-1") -> dict:
    token = auth.sign({"sub": sub, "role": "customer"}, intake.config.signing_key, timedelta(minutes=5))
    return {"Authorization": f"Bearer {token}"}


def too_many(answer, rule: str) -> bool:
    return (
        answer.status_code == 429
        and int(answer.headers["Retry-After"]) > 0
        and answer.json()["message"].startswith(f"complaints: too many filed without a login {rule}")
    )


async def test_anonymous_filings_beyond_the_per_client_limit_are_refused_and_file_nothing(intake_config):
    config = await intake_config(anonymous_filings_per_client=3)
    async with running_intake(config, peer="203.0.113.9") as intake:
        first = await intake.post("/api/complaints", json=complaint(), headers={"Idempotency-Key": "first-filing"})
        assert [first.status_code] + [
            (await intake.post("/api/complaints", json=complaint())).status_code for _ in range(2)
        ] == [201, 201, 201]
        refused = await intake.post("/api/complaints", json=complaint())
        assert too_many(refused, "from this address"), refused.text
        assert (await appended(config)).count("ComplaintFiled") == 3

        retried = await intake.post("/api/complaints", json=complaint(), headers={"Idempotency-Key": "first-filing"})
        assert (retried.status_code, retried.json()) == (201, first.json()), "a retry is no new filing"
        assert (await intake.post("/api/complaints", json=complaint(), headers=as_customer(intake))).status_code == 201
        async with intake.from_peer("203.0.113.10") as neighbour:
            assert (await neighbour.post("/api/complaints", json=complaint())).status_code == 201
        assert (await appended(config)).count("ComplaintFiled") == 5


async def test_anonymous_filings_about_one_order_beyond_the_per_order_limit_are_refused_and_change_nothing(
    intake_config,
):
    config = await intake_config(anonymous_filings_per_order=2)
    about_the_order = complaint(order_id="114-5523190-0012345")
    async with running_intake(config, peer="203.0.113.1") as intake:
        admitted = [
            await intake.from_peer(f"203.0.113.{n}").post("/api/complaints", json=about_the_order) for n in (1, 2)
        ]
        assert [a.status_code for a in admitted] == [201, 201]
        before = await appended(config)
        refused = await intake.from_peer("203.0.113.3").post("/api/complaints", json=about_the_order)
        assert too_many(refused, "about this order"), refused.text
        assert sorted(await appended(config)) == sorted(before)

        customer = await intake.post("/api/complaints", json=about_the_order, headers=as_customer(intake))
        assert customer.status_code == 201 and len(await appended(config)) > len(before)


async def test_two_intake_replicas_on_one_database_share_the_anonymous_filing_limit(intake_config):
    config = await intake_config(anonymous_filings_per_client=3)
    async with running_intake(config) as one, running_intake(config) as two:
        answers = [await replica.post("/api/complaints", json=complaint()) for replica in (one, two, one, two)]
        assert [a.status_code for a in answers] == [201, 201, 201, 429]
        assert too_many(answers[3], "from this address")
        assert (await appended(config)).count("ComplaintFiled") == 3


async def test_logged_in_and_verified_filers_are_not_held_to_the_anonymous_limit(intake_config):
    config = await intake_config(anonymous_filings_per_client=1, anonymous_filings_per_order=1)
    async with running_intake(config) as intake:
        assert (await intake.post("/api/complaints", json=complaint())).status_code == 201
        assert too_many(await intake.post("/api/complaints", json=complaint()), "from this address")
        verified = await filing_token(intake, "sel-48213")
        answers = [
            await intake.post("/api/complaints", json=complaint(order_id="114-7710042-5501234"), headers=headers)
            for headers in (as_customer(intake), as_customer(intake, "cust-2"), verified, verified)
        ]
        assert [a.status_code for a in answers] == [201, 201, 201, 201]
        # each proven person has a case of the order; the verified seller's second filing joins hers
        assert [a.json()["status"] for a in answers] == ["open", "open", "open", "linked"]
        assert (await appended(config)).count("ComplaintFiled") == 4


async def code_sent_for(intake, verification_id: str) -> str:
    events, _ = await intake.app.state.services.runtime.store.load(verification_stream(verification_id))
    return code_as_notify_reads_it(verification_id, events[-1].code_sealed)  # what notify delivers


async def filing_token(intake, seller_id: str) -> dict:
    asked = (await intake.post("/api/verification/codes", json={"seller_id": seller_id})).json()
    verified = await intake.post(
        "/api/verification/verify",
        json={
            "seller_id": seller_id,
            "verification_id": asked["verification_id"],
            "code": await code_sent_for(intake, asked["verification_id"]),
        },
    )
    return {"Authorization": f"Bearer {verified.json()['filing_token']}"}


async def five_wrong_codes(intake, seller_id: str, channel: str) -> list[int]:
    asked = (await intake.post("/api/verification/codes", json={"seller_id": seller_id, "channel": channel})).json()
    right = await code_sent_for(intake, asked["verification_id"])
    wrong = str((int(right) + 1) % 10**6).zfill(6)
    return [
        (
            await intake.post(
                "/api/verification/verify",
                json={
                    "seller_id": seller_id,
                    "channel": channel,
                    "verification_id": asked["verification_id"],
                    "code": wrong,
                },
            )
        ).status_code
        for _ in range(5)
    ]


async def locked_by_the_other_channel(intake, seller_id: str, channel: str) -> None:
    vid = intake.app.state.services.locked_out.verification_id(None, seller_id)
    before = len(await intake.app.state.services.runtime.store.read_stream(verification_stream(vid)))
    asked = await intake.post("/api/verification/codes", json={"seller_id": seller_id, "channel": channel})
    assert asked.status_code == 429 and asked.json()["message"].startswith("verification: ")
    guessed = await intake.post(
        "/api/verification/verify",
        json={"seller_id": seller_id, "channel": channel, "verification_id": vid, "code": "123456"},
    )
    assert guessed.status_code == 429 and int(guessed.headers["Retry-After"]) > 0
    assert len(await intake.app.state.services.runtime.store.read_stream(verification_stream(vid))) == before


async def test_five_wrong_codes_by_email_lock_the_reference_by_sms_too(intake):
    assert await five_wrong_codes(intake, "sel-48213", "email") == [422] * 5
    await locked_by_the_other_channel(intake, "sel-48213", "sms")
    assert (await filing_token(intake, "sel-00001"))["Authorization"], "another account verifies as before"


async def test_five_wrong_codes_by_sms_lock_the_reference_by_email_too(intake):
    assert await five_wrong_codes(intake, "sel-00001", "sms") == [422] * 5
    await locked_by_the_other_channel(intake, "sel-00001", "email")


async def test_the_latest_code_counts_whichever_channel_it_went_to(intake):
    by_email = (await intake.post("/api/verification/codes", json={"seller_id": "sel-48213"})).json()
    email_code = await code_sent_for(intake, by_email["verification_id"])
    by_sms = (await intake.post("/api/verification/codes", json={"seller_id": "sel-48213", "channel": "sms"})).json()
    assert by_sms["verification_id"] == by_email["verification_id"]
    check = {"seller_id": "sel-48213", "verification_id": by_sms["verification_id"]}
    sms_code = await code_sent_for(intake, by_sms["verification_id"])
    if sms_code != email_code:
        stale = await intake.post("/api/verification/verify", json={**check, "channel": "email", "code": email_code})
        assert stale.status_code == 422
    fresh = await intake.post("/api/verification/verify", json={**check, "channel": "sms", "code": sms_code})
    assert fresh.status_code == 200 and fresh.json()["filing_token"]
