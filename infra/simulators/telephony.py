"""A stand-in for a Twilio-style telephony provider: calls and SMS, recorded for the tests.

``python -m infra.simulators.telephony --port 8092`` serves it; `make up` and the integration
tests run it as a real process. It answers ``POST /2010-04-01/Accounts/{sid}/Calls.json`` and
``Messages.json`` (form-encoded, HTTP basic auth: account sid and any token) as the provider
does, ``GET /received`` lists what it was asked, and ``PUT /faults`` makes the next calls fail
(``{"calls": "no-answer", "count": 3}``) so that retries and fallbacks are tested for real.

Like the real provider, it honours an idempotency key (``I-Twilio-Idempotency-Token``, or
``Idempotency-Key``): a request that repeats an accepted request's key gets the first answer back
and places nothing, so ``/received`` lists one entry per call or SMS really made.
"""

from __future__ import annotations

import argparse
import base64
import uuid
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

app = FastAPI(title="Telephony simulator (Twilio-style)", version="1")
RECEIVED: dict[str, list[dict]] = {"calls": [], "messages": []}
FAULTS: dict[str, object] = {"calls": None, "count": 0}
#: The first accepted answer per (account, resource, idempotency key).
ANSWERED: dict[tuple[str, str, str], dict] = {}
KEY_HEADERS = ("i-twilio-idempotency-token", "idempotency-key")


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calls: Literal["no-answer", "busy", "failed", "error"] | None = Field(
        None, description="What the next calls do: a failed status, or an HTTP 500 (error); null: they connect.")
    count: int = Field(1, ge=0, description="How many calls fail that way (then they connect again).")


def _refused(request: Request, sid: str) -> JSONResponse | None:
    header = request.headers.get("authorization", "")
    try:
        user = base64.b64decode(header.removeprefix("Basic ")).decode().split(":", 1)[0] if header else ""
    except ValueError:
        user = ""
    if user != sid:
        return JSONResponse({"code": 20003, "message": "Authenticate"}, 401)
    return None


async def _form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}


def _key(request: Request, sid: str, resource: str) -> tuple[str, str, str] | None:
    key = next((request.headers[h] for h in KEY_HEADERS if request.headers.get(h)), None)
    return (sid, resource, key) if key else None


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/2010-04-01/Accounts/{sid}/Calls.json", status_code=201)
async def create_call(sid: str, request: Request):
    if (refused := _refused(request, sid)) is not None:
        return refused
    form = await _form(request)
    if not form.get("To") or not form.get("From") or not (form.get("Twiml") or form.get("Url")):
        return JSONResponse({"code": 21201, "message": "To, From and Twiml or Url are required"}, 400)
    if (key := _key(request, sid, "calls")) in ANSWERED:
        return ANSWERED[key]  # the same request again: the first call, not a second one
    status = "queued"
    if FAULTS["calls"] and FAULTS["count"] > 0:
        FAULTS["count"] -= 1
        status = str(FAULTS["calls"])
    call = {"sid": f"CA{uuid.uuid4().hex}", "account_sid": sid, "to": form["To"], "from": form["From"],
            "twiml": form.get("Twiml"), "url": form.get("Url"), "status": status,
            "date_created": datetime.now(UTC).isoformat()}
    RECEIVED["calls"].append(call)
    if status == "error":  # not remembered: a retry with the same key is a new request
        return JSONResponse({"code": 20500, "message": "Internal Server Error"}, 500)
    if key:
        ANSWERED[key] = call
    return call


@app.post("/2010-04-01/Accounts/{sid}/Messages.json", status_code=201)
async def create_message(sid: str, request: Request):
    if (refused := _refused(request, sid)) is not None:
        return refused
    form = await _form(request)
    if not form.get("To") or not form.get("Body"):
        return JSONResponse({"code": 21602, "message": "To and Body are required"}, 400)
    if (key := _key(request, sid, "messages")) in ANSWERED:
        return ANSWERED[key]
    message = {"sid": f"SM{uuid.uuid4().hex}", "account_sid": sid, "to": form["To"], "from": form.get("From"),
               "body": form["Body"], "status": "queued", "date_created": datetime.now(UTC).isoformat()}
    RECEIVED["messages"].append(message)
    if key:
        ANSWERED[key] = message
    return message


@app.get("/received", summary="Every call and SMS asked for, oldest first.")
async def received() -> dict:
    return RECEIVED


@app.delete("/received", status_code=204)
async def forget() -> None:
    RECEIVED["calls"].clear()
    RECEIVED["messages"].clear()


@app.put("/faults", summary="Make the next calls fail.")
async def set_faults(faults: Faults) -> dict:
    FAULTS.update(faults.model_dump())
    return FAULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
