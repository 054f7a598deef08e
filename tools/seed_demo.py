"""Seed the demo roster of `make up` through routing's own API: agents for the three stories,
the partner teams, everyone available. Safe to run again: a registration is "latest wins" and
setting the same availability twice appends nothing.

    python -m tools.seed_demo --routing-url http://127.0.0.1:8002 [--signing-key KEY]
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

import httpx

from services.kernel import auth
from services.routing.settings import RoutingSettings

AGENTS = [
    {
        "agent_id": "agt-ana",
        "name": "Ana Ribeiro",
        "skills": ["delivery_driver_conduct", "late_delivery", "package_not_received"],
        "languages": ["en-GB", "pt"],
        "capacity": 2,
    },
    {
        "agent_id": "agt-priya",
        "name": "Priya Raman",
        "skills": ["part_of_order_missing", "late_delivery", "refund", "damaged_item", "wrong_address"],
        "languages": ["en-GB", "hi"],
        "capacity": 2,
    },
    {
        "agent_id": "agt-omar",
        "name": "Omar Haddad",
        "skills": ["seller_issue", "refund", "other"],
        "languages": ["en-GB", "ar"],
        "capacity": 2,
    },
    {
        "agent_id": "agt-sec-lee",
        "name": "Jin Lee (account security)",
        "skills": ["account_locked"],
        "languages": ["en-GB"],
        "capacity": 1,
        "teams": ["team-account-security"],
    },
    {
        "agent_id": "sup-maya",
        "name": "Maya Stone (supervisor)",
        "skills": ["other"],
        "languages": ["en-GB"],
        "capacity": 3,
        "teams": ["supervisors"],
    },
]
TEAMS = [
    {
        "team_id": "team-logistics-uk-south",
        "name": "Regional logistics partner, UK South",
        "categories": ["delivery_driver_conduct", "late_delivery", "package_not_received"],
        "response_sla_minutes": 240,
    },
    {
        "team_id": "team-seller-support",
        "name": "Seller support",
        "categories": ["seller_issue", "refund"],
        "response_sla_minutes": 480,
    },
    {
        "team_id": "team-account-security",
        "name": "Account security",
        "categories": ["account_locked"],
        "response_sla_minutes": 60,
        "restricted": True,
    },
]


def seed(routing_url: str, signing_key: str) -> None:
    token = auth.sign({"sub": "seed-demo", "role": "admin"}, signing_key, timedelta(minutes=5))
    with httpx.Client(
        base_url=routing_url, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False
    ) as client:
        for team in TEAMS:
            client.post("/api/partner-teams", json=team).raise_for_status()
        for agent in AGENTS:
            client.post("/api/agents", json=agent).raise_for_status()
            client.put(
                f"/api/agents/{agent['agent_id']}/availability", json={"availability": "available"}
            ).raise_for_status()
    print(f"demo roster: {len(AGENTS)} agents available, {len(TEAMS)} partner teams")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routing-url", default="http://127.0.0.1:8002")
    parser.add_argument(
        "--signing-key",
        default=RoutingSettings.model_fields["signing_key"].default,
        help="routing's SIGNING_KEY (default: the local stack's development key)",
    )
    args = parser.parse_args()
    try:
        seed(args.routing_url, args.signing_key)
    except httpx.HTTPError as exc:
        print(f"seeding the demo roster at {args.routing_url} failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
