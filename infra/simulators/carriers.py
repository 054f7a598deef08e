"""A stand-in for four carriers' tracking APIs (FedEx, UPS, USPS, Australia Post), seeded from carriers.json.

``python -m infra.simulators.carriers --port 8091`` serves it; `make up` and the integration tests
run it as a real process. Each carrier is spoken in the shape of its public API, OAuth token
endpoints included, so the service's adapters are exercised over real HTTP:

- FedEx  ``POST /oauth/token`` (form), ``POST /track/v1/trackingnumbers``
- UPS    ``POST /security/v1/oauth/token`` (HTTP Basic), ``GET /api/track/v1/details/{number}``
- USPS   ``POST /oauth2/v3/token`` (JSON), ``GET /tracking/v3/tracking/{number}``
- Australia Post ``GET /shipping/v1/track?tracking_ids=`` (HTTP Basic with the API key, ``account-number``)

What a tracking number answers is its **scenario** (``GET /scenarios`` lists them): seeded per
number in carriers.json, set with ``PUT /scenarios/{number}``, or forced on a carrier's next
requests with ``PUT /faults`` (carrier down, rate limited, slow, malformed JSON). Times are made
relative to the moment of the request, in the destination's UTC offset.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

SEED = Path(__file__).with_name("carriers.json")
CARRIERS = ("fedex", "ups", "usps", "auspost")
#: Where each carrier's parcels are delivered in the demo data: its local UTC offset.
OFFSETS = {"fedex": timezone(timedelta(hours=-5)), "ups": UTC, "usps": timezone(timedelta(hours=-5)),
           "auspost": timezone(timedelta(hours=11))}

#: The answers a tracking number can give; the first group are package states, the rest faults.
STATES = ("label_created", "in_transit", "out_for_delivery", "delivered", "delivered_to_neighbour",
          "delivered_to_safe_place", "delayed_by_weather", "exception_address", "returned_to_sender", "lost")
FAULTS = ("carrier_down", "rate_limited", "slow", "malformed_json", "oversized", "not_found")
Scenario = Literal["label_created", "in_transit", "out_for_delivery", "delivered", "delivered_to_neighbour",
                   "delivered_to_safe_place", "delayed_by_weather", "exception_address", "returned_to_sender",
                   "lost", "carrier_down", "rate_limited", "slow", "malformed_json", "oversized", "not_found"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Parcel(Record):
    carrier: Literal["fedex", "ups", "usps", "auspost"]
    scenario: Scenario


class Seed(Record):
    about: str = ""
    credentials: dict[str, dict[str, str]]
    parcels: dict[str, Parcel]
    stories: dict[str, list[str]] = {}


class ScenarioChoice(Record):
    scenario: Scenario = Field(description="What the number answers from now on.")
    carrier: Literal["fedex", "ups", "usps", "auspost"] | None = Field(
        None, description="Only needed for a number not in the seed.")


class Fault(Record):
    """What the next ``times`` tracking requests to ``carrier`` (or to every carrier) suffer."""

    scenario: Literal["carrier_down", "rate_limited", "slow", "malformed_json", "oversized"]
    carrier: Literal["fedex", "ups", "usps", "auspost"] | None = None
    times: int = Field(1, ge=0, le=10_000)
    status: int = Field(503, ge=500, le=599, description="For carrier_down: the 5xx to answer.")
    retry_after_s: int = Field(1, ge=0, le=3600, description="For rate_limited: the Retry-After sent.")
    delay_s: float = Field(3.0, ge=0, le=60, description="For slow: the pause before answering.")


class World:
    """The simulator's state: scenarios per number, faults pending, tokens issued, requests seen."""

    def __init__(self, seed: Seed) -> None:
        self.seed, self.parcels = seed, dict(seed.parcels)
        self.faults: list[list[Any]] = []  # [fault, left]
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (carrier, expiry)
        self.requests: dict[str, int] = {c: 0 for c in CARRIERS}

    def issue(self, carrier: str, ttl_s: int = 3600) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (carrier, time.monotonic() + ttl_s)
        return token

    def authorised(self, carrier: str, authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ").strip()
        issued = self.tokens.get(token)
        return bool(issued and issued[0] == carrier and issued[1] > time.monotonic())

    def fault_for(self, carrier: str) -> Fault | None:
        for entry in self.faults:
            fault, left = entry
            if left > 0 and fault.carrier in (None, carrier):
                entry[1] -= 1
                return fault
        return None

    def scenario(self, carrier: str, number: str) -> str:
        parcel = self.parcels.get(number)
        return parcel.scenario if parcel and parcel.carrier == carrier else "not_found"


# --- the four carriers' shapes ------------------------------------------------------------------

def moments(carrier: str) -> dict[str, datetime]:
    """The times a story needs, relative to now, in the carrier's destination offset."""
    now = datetime.now(OFFSETS[carrier]).replace(microsecond=0)
    tomorrow = (now + timedelta(days=1)).date()
    return {"now": now, "scan": now - timedelta(hours=3), "earlier": now - timedelta(days=1, hours=2),
            "delivered": now - timedelta(hours=1, minutes=18),
            "from": datetime.combine(tomorrow, datetime.min.time(), OFFSETS[carrier]).replace(hour=12),
            "by": datetime.combine(tomorrow, datetime.min.time(), OFFSETS[carrier]).replace(hour=18)}


def fedex(number: str, scenario: str) -> dict:
    t = moments("fedex")
    code, words, extra = {
        "label_created": ("OC", "Label created", {}),
        "in_transit": ("IT", "In transit", {}),
        "out_for_delivery": ("OD", "On FedEx vehicle for delivery", {}),
        "delivered": ("DL", "Delivered", {}),
        "delivered_to_neighbour": ("DL", "Delivered", {}),
        "delivered_to_safe_place": ("DL", "Delivered", {}),
        "delayed_by_weather": ("IT", "In transit", {"delayDetail": {"type": "WEATHER", "subType": "SNOW",
                                                                    "status": "DELAYED"}}),
        "exception_address": ("DE", "Delivery exception", {"ancillaryDetails": [
            {"reason": "08", "reasonDescription": "Incorrect address", "action": "Contact us"}]}),
        "returned_to_sender": ("RS", "Return to shipper", {}),
        "lost": ("SE", "Shipment exception", {"ancillaryDetails": [
            {"reason": "LP", "reasonDescription": "Package lost; unable to locate", "action": "Claim"}]}),
    }[scenario]
    delivered = code == "DL"
    where = {"delivered": ("Residence", "S.OKAFOR", True), "delivered_to_neighbour": ("Neighbor", "M.JONES", True),
             "delivered_to_safe_place": ("Front porch", None, False)}.get(scenario)
    result: dict[str, Any] = {
        "trackingNumberInfo": {"trackingNumber": number, "carrierCode": "FDXG"},
        "latestStatusDetail": {"code": code, "derivedCode": code, "statusByLocale": words, "description": words,
                               "scanLocation": {"city": "MEMPHIS", "stateOrProvinceCode": "TN", "countryCode": "US"},
                               **extra},
        "dateAndTimes": [{"type": "SHIP", "dateTime": t["earlier"].isoformat()}],
        "scanEvents": [{"date": t["scan"].isoformat(), "eventType": code, "eventDescription": words,
                        "scanLocation": {"city": "MEMPHIS", "stateOrProvinceCode": "TN", "countryCode": "US"}}],
        "deliveryDetails": {},
    }
    if delivered:
        result["dateAndTimes"].append({"type": "ACTUAL_DELIVERY", "dateTime": t["delivered"].isoformat()})
        result["deliveryDetails"] = {"locationDescription": where[0], "receivedByName": where[1],
                                     "signatureProofOfDeliveryAvailable": where[2]}
    elif code not in ("RS", "SE"):
        result["estimatedDeliveryTimeWindow"] = {"window": {"begins": t["from"].isoformat(),
                                                            "ends": t["by"].isoformat()}}
        eligible = "INELIGIBLE" if code == "OD" else "ELIGIBLE"
        result["deliveryDetails"] = {"deliveryOptionEligibilityDetails": [
            {"option": "RETURN_TO_SHIPPER", "eligibility": eligible},
            {"option": "REDIRECT_TO_HOLD_AT_LOCATION", "eligibility": eligible},
            {"option": "DISPUTE_DELIVERY", "eligibility": "INELIGIBLE"}]}
    return {"transactionId": secrets.token_hex(8),
            "output": {"completeTrackResults": [{"trackingNumber": number, "trackResults": [result]}]}}


def fedex_not_found(number: str) -> dict:
    return {"transactionId": secrets.token_hex(8), "output": {"completeTrackResults": [{
        "trackingNumber": number, "trackResults": [{"trackingNumberInfo": {"trackingNumber": number}, "error": {
            "code": "TRACKING.TRACKINGNUMBER.NOTFOUND",
            "message": "Tracking number cannot be found. Please correct the tracking number and try again."}}]}]}}


def ups(number: str, scenario: str) -> dict:
    t = moments("ups")
    kind, code, words = {
        "label_created": ("M", "MP", "Shipper created a label, UPS has not received the package yet."),
        "in_transit": ("I", "DP", "Departed from Facility"),
        "out_for_delivery": ("O", "OT", "Out For Delivery Today"),
        "delivered": ("D", "KB", "DELIVERED"),
        "delivered_to_neighbour": ("D", "KB", "DELIVERED"),
        "delivered_to_safe_place": ("D", "KB", "DELIVERED"),
        "delayed_by_weather": ("X", "WR", "A severe weather condition has delayed delivery."),
        "exception_address": ("X", "AI", "The address is incomplete; UPS is attempting to update it."),
        "returned_to_sender": ("RS", "RS", "Returned to sender: the receiver refused the package."),
        "lost": ("X", "LF", "We are unable to locate the package; a trace is in progress."),
    }[scenario]
    when = t["delivered"] if kind == "D" else t["scan"]
    offset = when.strftime("%z")
    package: dict[str, Any] = {
        "trackingNumber": number,
        "currentStatus": {"type": kind, "code": code, "description": words, "simplifiedTextDescription": words,
                          "statusCode": {"M": "003", "I": "005", "O": "021", "D": "011", "X": "007",
                                         "RS": "013"}[kind]},
        "activity": [{"location": {"address": {"city": "LEEDS", "countryCode": "GB", "country": "GB"}},
                      "status": {"type": kind, "code": code, "description": words},
                      "date": when.strftime("%Y%m%d"), "time": when.strftime("%H%M%S"),
                      "gmtDate": when.astimezone(UTC).strftime("%Y%m%d"),
                      "gmtTime": when.astimezone(UTC).strftime("%H:%M:%S"),
                      "gmtOffset": f"{offset[:3]}:{offset[3:]}"}],
        "deliveryDate": [], "packageCount": 1,
    }
    if kind == "D":
        where = {"delivered": ("Front Desk", "OKAFOR", True),
                 "delivered_to_neighbour": ("Neighbour", "JONES (NO 14)", True),
                 "delivered_to_safe_place": ("Front Door", "", False)}[scenario]
        package["deliveryDate"] = [{"type": "DEL", "date": when.strftime("%Y%m%d")}]
        package["deliveryInformation"] = {"location": where[0], "receivedBy": where[1],
                                          "signature": {"image": base64.b64encode(b"sig").decode()} if where[2] else {}}
    elif kind in ("M", "I", "O", "X") and scenario not in ("lost", "exception_address"):
        package["deliveryDate"] = [{"type": "RDD" if kind == "X" else "SDD", "date": t["by"].strftime("%Y%m%d")}]
        package["deliveryTime"] = {"type": "CMT", "startTime": t["from"].strftime("%H%M%S"),
                                   "endTime": t["by"].strftime("%H%M%S")}
    return {"trackResponse": {"shipment": [{"inquiryNumber": number, "package": [package], "userRelation": []}]}}


def ups_not_found(number: str) -> dict:
    return {"response": {"errors": [{"code": "TW0001", "message": "Tracking Information Not Found"}]}}


def usps(number: str, scenario: str) -> dict:
    t = moments("usps")
    category, status, event = {
        "label_created": ("Pre-Shipment", "Shipping Label Created, USPS Awaiting Item", "Shipping Label Created"),
        "in_transit": ("In Transit", "In Transit to Next Facility", "Departed USPS Regional Facility"),
        "out_for_delivery": ("Out for Delivery", "Out for Delivery", "Out for Delivery"),
        "delivered": ("Delivered", "Delivered, Left with Individual", "Delivered, Left with Individual"),
        "delivered_to_neighbour": ("Delivered", "Delivered, Left with Neighbor", "Delivered, Left with Neighbor"),
        "delivered_to_safe_place": ("Delivered", "Delivered, Front Door/Porch", "Delivered, Front Door/Porch"),
        "delayed_by_weather": ("Alert", "Delayed: severe weather", "Weather Delay"),
        "exception_address": ("Alert", "Insufficient Address", "Insufficient Address"),
        "returned_to_sender": ("Alert", "Return to Sender Processed", "Return to Sender Processed"),
        "lost": ("Alert", "Missing Mail Search: unable to locate", "Missing Mail Search Opened"),
    }[scenario]
    when = t["delivered"] if category == "Delivered" else t["scan"]
    offset = when.strftime("%z")
    body: dict[str, Any] = {
        "trackingNumber": number, "mailClass": "Priority Mail", "destinationCity": "BROOKLYN",
        "destinationState": "NY", "destinationZIP": "11201", "originCity": "MEMPHIS", "originState": "TN",
        "status": status, "statusCategory": category, "statusSummary": f"Your item's status: {status}.",
        "trackingEvents": [{"eventType": event, "eventTimestamp": when.replace(tzinfo=None).isoformat(),
                            "GMTTimestamp": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "GMTOffset": f"{offset[:3]}:{offset[3:]}", "eventCountry": "US",
                            "eventCity": "BROOKLYN", "eventState": "NY", "eventZIP": "11201",
                            "name": {"delivered": "S OKAFOR", "delivered_to_neighbour": "M JONES"}.get(scenario, ""),
                            "eventCode": "01" if category == "Delivered" else "10"}],
    }
    if category in ("Pre-Shipment", "In Transit", "Out for Delivery") or scenario == "delayed_by_weather":
        body["expectedDeliveryTimeStamp"] = t["by"].replace(tzinfo=None).isoformat()
        body["predictedDeliveryWindowStartTime"] = t["from"].replace(tzinfo=None).isoformat()
        body["predictedDeliveryWindowEndTime"] = t["by"].replace(tzinfo=None).isoformat()
    return body


def usps_not_found(number: str) -> dict:
    return {"apiVersion": "v3", "error": {"code": "404", "message": f"The tracking number {number} was not found."}}


def auspost(number: str, scenario: str) -> dict:
    t = moments("auspost")
    status, description, signer = {
        "label_created": ("Created", "Shipping information received by Australia Post", None),
        "in_transit": ("In transit", "Processed through Australia Post facility", None),
        "out_for_delivery": ("On Board for Delivery", "Onboard for delivery", None),
        "delivered": ("Delivered", "Delivered - Signed for by recipient", "S OKAFOR"),
        "delivered_to_neighbour": ("Delivered", "Delivered - Left with neighbour", "M JONES"),
        "delivered_to_safe_place": ("Delivered", "Delivered - Left in a safe place", None),
        "delayed_by_weather": ("Possible delay", "Delay due to severe weather conditions", None),
        "exception_address": ("Cannot be delivered", "Unable to deliver - incorrect address", None),
        "returned_to_sender": ("Returned to sender", "Item returned to sender", None),
        "lost": ("Lost", "Item could not be located", None),
    }[scenario]
    when = t["delivered"] if status == "Delivered" else t["scan"]
    event: dict[str, Any] = {"location": "ALEXANDRIA NSW", "description": description, "date": when.isoformat()}
    if signer:
        event["signer_name"] = signer
    item: dict[str, Any] = {"article_id": number, "product_type": "eParcel", "status": status,
                            "events": [event, {"description": "Shipping information approved by Australia Post",
                                               "date": t["earlier"].isoformat()}]}
    if status in ("Created", "In transit", "On Board for Delivery", "Possible delay"):
        item["expected_delivery"] = {"from": t["from"].isoformat(), "to": t["by"].isoformat()}
    return {"tracking_results": [{"tracking_id": number, "status": status, "trackable_items": [item]}]}


def auspost_not_found(number: str) -> dict:
    errors = [{"code": "ESB-10001", "name": "Invalid tracking ID"}]
    return {"tracking_results": [{"tracking_id": number, "errors": errors}]}


RENDER: dict[str, Callable[[str, str], dict]] = {"fedex": fedex, "ups": ups, "usps": usps, "auspost": auspost}
NOT_FOUND: dict[str, tuple[int, Callable[[str], dict]]] = {
    "fedex": (200, fedex_not_found), "ups": (404, ups_not_found), "usps": (404, usps_not_found),
    "auspost": (200, auspost_not_found)}


async def form_of(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (read by hand: no multipart dependency needed)."""
    return {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}


# --- the app ------------------------------------------------------------------------------------

def create_app(seed_path: Path = SEED) -> FastAPI:
    world = World(Seed.model_validate_json(seed_path.read_text()))
    app = FastAPI(title="Carrier simulator", version="1",
                  description="FedEx, UPS, USPS and Australia Post tracking APIs, with named scenarios. "
                              + world.seed.about)

    def creds(carrier: str) -> tuple[str, str]:
        c = world.seed.credentials[carrier]
        return c["client_id"], c["client_secret"]

    async def answer(carrier: str, number: str) -> Response:
        """The answer for ``number`` after any fault set for ``carrier``."""
        world.requests[carrier] += 1
        fault = world.fault_for(carrier)
        scenario = fault.scenario if fault else world.scenario(carrier, number)
        if scenario == "carrier_down":
            return JSONResponse({"message": "simulated outage"}, fault.status if fault else 503)
        if scenario == "rate_limited":
            return JSONResponse({"message": "Too Many Requests"}, 429,
                                headers={"Retry-After": str(fault.retry_after_s if fault else 1)})
        if scenario == "slow":
            await asyncio.sleep(fault.delay_s if fault else 3.0)
            scenario = world.scenario(carrier, number)
            if scenario in FAULTS:
                scenario = "in_transit"
        if scenario == "malformed_json":
            return Response(b'{"output": {"completeTrackResults": [{"trackingNumber": ', 200,
                            media_type="application/json")
        if scenario == "oversized":
            filler = json.dumps({"padding": "x" * 2_000_000})
            return Response(filler.encode(), 200, media_type="application/json")
        if scenario == "not_found":
            status, render = NOT_FOUND[carrier]
            return JSONResponse(render(number), status)
        return JSONResponse(RENDER[carrier](number, scenario))

    def unauthorised(carrier: str) -> JSONResponse:
        return JSONResponse({"errors": [{"code": "NOT.AUTHORIZED.ERROR", "message": f"{carrier}: invalid token"}]}, 401)

    @app.get("/health", tags=["simulation"])
    async def health() -> dict:
        return {"status": "ok", "carriers": list(CARRIERS), "parcels": len(world.parcels)}

    # FedEx
    @app.post("/oauth/token", tags=["fedex"], summary="FedEx OAuth (client credentials, form).")
    async def fedex_token(request: Request) -> JSONResponse:
        form = await form_of(request)
        given = (form.get("client_id"), form.get("client_secret"))
        if form.get("grant_type") != "client_credentials" or given != creds("fedex"):
            return JSONResponse({"errors": [{"code": "NOT.AUTHORIZED.ERROR"}]}, 401)
        return JSONResponse({"access_token": world.issue("fedex"), "token_type": "bearer", "expires_in": 3599,
                             "scope": "CXS"})

    @app.post("/track/v1/trackingnumbers", tags=["fedex"], summary="FedEx Track API by tracking number.")
    async def fedex_track(request: Request, authorization: Annotated[str | None, Header()] = None) -> Response:
        if not world.authorised("fedex", authorization):
            return unauthorised("fedex")
        body = await request.json()
        number = body["trackingInfo"][0]["trackingNumberInfo"]["trackingNumber"]
        return await answer("fedex", number)

    # UPS
    @app.post("/security/v1/oauth/token", tags=["ups"], summary="UPS OAuth (client credentials, HTTP Basic).")
    async def ups_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        expected = "Basic " + base64.b64encode(":".join(creds("ups")).encode()).decode()
        if (await form_of(request)).get("grant_type") != "client_credentials" or authorization != expected:
            return JSONResponse({"response": {"errors": [{"code": "10401", "message": "ClientId is Invalid"}]}}, 401)
        return JSONResponse({"token_type": "Bearer", "issued_at": str(int(time.time() * 1000)),
                             "access_token": world.issue("ups"), "expires_in": "14399", "status": "approved"})

    @app.get("/api/track/v1/details/{number}", tags=["ups"], summary="UPS Tracking API.")
    async def ups_track(number: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        if not world.authorised("ups", authorization):
            return unauthorised("ups")
        return await answer("ups", number)

    # USPS
    @app.post("/oauth2/v3/token", tags=["usps"], summary="USPS OAuth (client credentials, JSON).")
    async def usps_token(request: Request) -> JSONResponse:
        body = await request.json()
        given = (body.get("client_id"), body.get("client_secret"))
        if body.get("grant_type") != "client_credentials" or given != creds("usps"):
            return JSONResponse({"error": "invalid_client"}, 401)
        return JSONResponse({"access_token": world.issue("usps"), "token_type": "Bearer", "expires_in": 28799})

    @app.get("/tracking/v3/tracking/{number}", tags=["usps"], summary="USPS Tracking v3.")
    async def usps_track(number: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        if not world.authorised("usps", authorization):
            return unauthorised("usps")
        return await answer("usps", number)

    # Australia Post
    @app.get("/shipping/v1/track", tags=["auspost"], summary="Australia Post tracking (up to 10 ids).")
    async def auspost_track(tracking_ids: str, authorization: Annotated[str | None, Header()] = None,
                            account_number: Annotated[str | None, Header(alias="account-number")] = None) -> Response:
        key, password = creds("auspost")
        if authorization != "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode() \
                or account_number != world.seed.credentials["auspost"]["account_number"]:
            return JSONResponse({"errors": [{"code": "API_001", "name": "Unauthorised"}]}, 401)
        return await answer("auspost", tracking_ids.split(",")[0])

    # Simulation controls
    @app.get("/scenarios", tags=["simulation"], summary="Every scenario, and the seeded numbers.")
    async def scenarios() -> dict:
        return {"states": list(STATES), "faults": list(FAULTS), "stories": world.seed.stories,
                "parcels": {n: p.model_dump() for n, p in world.parcels.items()}}

    @app.put("/scenarios/{number}", tags=["simulation"], summary="Make a tracking number answer a scenario.")
    async def set_scenario(number: str, choice: ScenarioChoice) -> dict:
        carrier = choice.carrier or (world.parcels[number].carrier if number in world.parcels else None)
        if carrier is None:
            return JSONResponse({"message": "carrier: required for a number not in the seed"}, 422)
        world.parcels[number] = Parcel(carrier=carrier, scenario=choice.scenario)
        return {"tracking_number": number, **world.parcels[number].model_dump()}

    @app.get("/simulation/tracking/{carrier}/{number}", tags=["simulation"],
             summary="The carrier-shaped tracking JSON of a number, without auth (to build webhook pushes).")
    async def rendered(carrier: Literal["fedex", "ups", "usps", "auspost"], number: str) -> dict:
        scenario = world.scenario(carrier, number)
        return RENDER[carrier](number, scenario if scenario in STATES else "in_transit")

    @app.put("/faults", tags=["simulation"], summary="Make a carrier's next tracking requests fail.")
    async def set_fault(fault: Fault) -> Fault:
        world.faults.append([fault, fault.times])
        return fault

    @app.delete("/faults", tags=["simulation"], summary="Answer normally again.", status_code=204)
    async def clear_faults() -> None:
        world.faults.clear()

    @app.get("/requests", tags=["simulation"], summary="Tracking requests seen per carrier.")
    async def requests_seen() -> dict:
        return dict(world.requests)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--seed", type=Path, default=SEED, help="JSON file of credentials and parcels")
    args = parser.parse_args()
    uvicorn.run(create_app(args.seed), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
