"""Locust users who file a complaint and press "Call me now", as a logged-in customer would.

Run by bench/platform.py as ``locust --headless -f bench/locustfile.py``; set by the environment:

  BENCH_INTAKE_URLS   intake base URLs, comma separated; user i calls the (i mod n)-th
  BENCH_TOTAL         complaints in all (then the run quits); 0: until --run-time
  BENCH_RATE          complaints per second for all users together; 0: as fast as they can
  BENCH_USERS         users (to share BENCH_RATE among them)
  BENCH_RECORDS       JSON lines file: one line per complaint (phone, click time, answers)
  BENCH_PHONE_PREFIX  E.164 prefix of this run's phones (+1555 and two digits); the phone is unique
  BENCH_SIGNING_KEY   intake's SIGNING_KEY (customer tokens)

The click is the moment the callback request leaves; the telephony simulator's record of the call
says when it was dialled (same machine, same clock).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from datetime import timedelta

import gevent
from locust import constant, constant_throughput, events
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from services.kernel import auth

URLS = [u for u in os.environ.get("BENCH_INTAKE_URLS", "http://127.0.0.1:8001").split(",") if u]
TOTAL = int(os.environ.get("BENCH_TOTAL", "0"))
RATE = float(os.environ.get("BENCH_RATE", "0"))
USERS = max(1, int(os.environ.get("BENCH_USERS", "1")))
PREFIX = os.environ.get("BENCH_PHONE_PREFIX", "+155500")
KEY = os.environ.get("BENCH_SIGNING_KEY", "dev-only-signing-key-change-me-0123456789")
RECORDS = open(os.environ.get("BENCH_RECORDS", os.devnull), "a", buffering=1)  # noqa: SIM115

numbers = itertools.count()
finished = 0
user_numbers = itertools.count()


class Complainant(FastHttpUser):
    """Files one complaint about a late delivery, then asks to be called, again and again."""

    wait_time = constant_throughput(RATE / USERS) if RATE else constant(0)
    network_timeout = 30.0
    connection_timeout = 30.0

    def __init__(self, environment) -> None:
        self.host = URLS[next(user_numbers) % len(URLS)]
        super().__init__(environment)

    def _token(self, customer: str) -> str:
        return auth.sign({"sub": customer, "role": "customer"}, KEY, timedelta(hours=2))

    def _done(self) -> None:
        global finished
        finished += 1
        if TOTAL and finished >= TOTAL:
            # From a greenlet of its own: quit() stops every user, this one's greenlet among them,
            # and called from here it died with it half-way — Locust then ran on until --run-time
            # (the two-instance phase waited 30 minutes for nothing, sessions 6 and 7).
            gevent.spawn(self.environment.runner.quit)

    def on_start(self) -> None:
        # the same customer token for a user's filings: one login, many complaints
        self.customer = f"cust-bench-{id(self):x}"
        self.headers = {"Authorization": f"Bearer {self._token(self.customer)}"}

    def file_and_call(self) -> None:
        n = next(numbers)
        if TOTAL and n >= TOTAL:
            raise StopUser()
        phone = f"{PREFIX}{n:06d}"
        record = {"n": n, "phone": phone, "started": time.time()}
        try:
            filed = self.client.post(
                "/api/complaints",
                name="POST /api/complaints",
                headers=self.headers,
                json={
                    "category": "late_delivery",
                    "description": f"Parcel {n} is a week late; please call me.",
                    "channel": "web",
                    "complainant": {"phone": phone, "display_name": f"Bench {n}"},
                },
            )
            record.update(
                file_status=filed.status_code,
                file_retry_after=filed.headers.get("Retry-After") if filed.headers else None,
            )
            if filed.status_code != 201:
                return
            case = filed.json()
            record["complaint_id"] = case["complaint_id"]
            record["clicked"] = time.time()
            called = self.client.post(
                f"/api/complaints/{case['complaint_id']}/callback",
                name="POST /api/complaints/{id}/callback",
                headers={"Authorization": f"Bearer {case['access_token']}"},
                json={"phone": phone, "preferred_language": "en"},
            )
            record.update(
                call_status=called.status_code,
                answered=time.time(),
                call_retry_after=called.headers.get("Retry-After") if called.headers else None,
            )
        finally:
            RECORDS.write(json.dumps(record) + "\n")
            self._done()

    tasks = [file_and_call]


@events.quitting.add_listener
def _close(**_kwargs) -> None:
    RECORDS.flush()
