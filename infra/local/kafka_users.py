"""The local stack's Kafka users and ACLs, from the production manifests (stack.sh --auth).

Each Strimzi KafkaUser of infra/k8s/kafka-users becomes a SCRAM-SHA-512 user of the local broker
with the same ACLs, so that a laptop refuses what a cluster refuses (issue 16): intake cannot
write routing's topic, a client without credentials cannot connect. The platform's topics are
created here, by the admin, as Strimzi creates them in a cluster (a service may not create topics).
Idempotent: run at every start. Passwords come from the stack's credentials file.

    python kafka_users.py <bootstrap> <credentials.env>
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

USERS = Path(__file__).resolve().parents[1] / "k8s" / "kafka-users" / "users.yaml"
TOPICS = ("intake", "routing", "carrier", "notify")
MAX_MESSAGE_BYTES = "1048588"  # = KAFKA_MAX_MESSAGE_BYTES (docs/adr/0024)
PARTITIONS = 6


def credentials(path: Path) -> dict[str, str]:
    """``NAME=value`` lines: ADMIN_PASSWORD, INTAKE_PASSWORD, …"""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def admin_client(bootstrap: str, password: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "security.protocol": "sasl_plaintext",
                        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin", "sasl.password": password,
                        "log_level": 0})


def bindings(user: dict) -> list[AclBinding]:
    principal = f"User:{user['metadata']['name']}"
    found = []
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        kind = ResourceType[resource["type"].upper()]
        pattern = ResourcePatternType[{"prefix": "PREFIXED"}.get(resource.get("patternType"), "LITERAL")]
        for operation in acl["operations"]:
            name = "".join("_" + c if c.isupper() and i else c for i, c in enumerate(operation)).upper()
            found.append(AclBinding(kind, resource["name"], pattern, principal, "*",
                                    AclOperation[name], AclPermissionType.ALLOW))
    return found


def main(bootstrap: str, credentials_file: str) -> None:
    secrets = credentials(Path(credentials_file))
    admin = admin_client(bootstrap, secrets["ADMIN_PASSWORD"])
    users = [u for u in yaml.safe_load_all(USERS.read_text()) if u and u.get("kind") == "KafkaUser"]
    upserts = []
    for user in users:
        service = user["metadata"]["name"].removeprefix("complaints-")
        upserts.append(UserScramCredentialUpsertion(
            user["metadata"]["name"], ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
            secrets[f"{service.upper()}_PASSWORD"].encode()))
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result()
    for future in admin.create_acls([b for u in users for b in bindings(u)]).values():
        future.result()
    names = [n for t in TOPICS for n in (f"complaints.{t}.v1", f"complaints.{t}.v1.dlq")]
    existing = admin.list_topics(timeout=10).topics
    # replicas and min.insync.replicas: the broker's defaults (1 and 1 on one node, 3 and 2 on a
    # stack.sh --brokers 3 cluster, as infra/k8s/topics says for production)
    wanted = [NewTopic(n, PARTITIONS, config={"max.message.bytes": MAX_MESSAGE_BYTES})
              for n in names if n not in existing]
    for future in (admin.create_topics(wanted).values() if wanted else []):
        try:
            future.result()
        except KafkaException as exc:
            if "already exists" not in str(exc).lower():
                raise
    print(f"{len(users)} users with their ACLs; topics {', '.join(names[::2])} (+ .dlq)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
