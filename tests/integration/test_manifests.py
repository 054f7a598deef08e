"""The deployment artefacts keep our rules: Kubernetes manifests, the service image, compose.

The overlays are rendered by the real Kustomize (``tools/k8s/render.sh`` builds it once with
``go install`` into ``.cache/bin``; the first run needs the Go module proxy, hence an integration
test). Every rendered object is then checked by rules of our own below, and, where the
``kubernetes-validate`` package is installed, against the Kubernetes JSON schemas it ships
(offline). A deliberately broken overlay (``tools/k8s/broken``) must fail the rules.
No Docker engine here: the Dockerfile is linted, not built.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

import pytest

from contracts import TOPICS

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (add pyyaml==6.0.3 to the test extras)")

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "tools" / "k8s" / "render.sh"
DOCKERFILE = ROOT / "infra" / "images" / "service.Dockerfile"
COMPOSE = ROOT / "infra" / "compose.yaml"
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"

PART_OF = "complaint-platform"
COMMON_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component")
DAY_MS = 24 * 60 * 60 * 1000
PARTITIONS = 6
SECRET_VARIABLES = {
    "MONGODB_URL",
    "SIGNING_KEY",
    "INBOUND_WEBHOOK_SECRET",
    "TELEPHONY_AUTH_TOKEN",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "TRACKING_WEBHOOK_SECRET",
    "FEDEX_CLIENT_SECRET",
    "UPS_CLIENT_SECRET",
    "USPS_CLIENT_SECRET",
    "AUSPOST_PASSWORD",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_KEY_PASSWORD",
    "CODE_OPENING_KEYS",
}
#: Egress every service needs besides Kafka (whose port is the overlay's): MongoDB, DNS, the OTLP/HTTP collector.
EGRESS_PORTS = {27017, 53, 4318}
#: ...and what one service needs beyond that (intake: the order system, HTTPS; 8090 for the simulator;
#: carrier: the carriers' APIs and the order system, HTTPS; 8090 and 8091 for the simulators).
EXTRA_EGRESS_PORTS = {
    "intake": {443, 8090},
    "carrier": {443, 8090, 8091},
    "routing": {443, 8090},  # the order system
    # notify: the SMTP relay (587), the telephony API (443); locally mailpit and the simulator
    "notify": {587, 443, 1025, 8092, 8090},
}
#: The topics each service's consumer group reads (its ScaledObject watches their lag).
READS = {
    "intake": {t for s, t in TOPICS.items() if s != "intake"},
    "routing": {TOPICS["intake"], TOPICS["notify"]},
    "notify": {TOPICS["intake"], TOPICS["routing"]},
    "carrier": {TOPICS["intake"], TOPICS["routing"]},
}
#: What each overlay must be: the autoscaler it keeps and the topics' replication.
#: Production talks to Strimzi's SCRAM-SHA-512 listener over TLS (9093); a laptop to the plaintext one.
OVERLAYS = {
    "local": {"autoscaler": "HorizontalPodAutoscaler", "topic_replicas": 1, "kafka_port": 9092},
    "production": {"autoscaler": "ScaledObject", "topic_replicas": 3, "kafka_port": 9093},
    "production-gateway-api": {"autoscaler": "ScaledObject", "topic_replicas": 3, "kafka_port": 9093},
}
#: The public entry points, as a browser or a webhook calls them -> the Service and the path it gets.
ENTRY_POINTS = {
    ("complaints.example.com", "/"): ("intake", "/"),
    ("complaints.example.com", "/desk/cases/c-1"): ("intake", "/desk/cases/c-1"),
    ("complaints.example.com", "/api/inbound/email"): ("intake", "/api/inbound/email"),
    ("complaints.example.com", "/notify/closure"): ("notify", "/closure"),
    ("routing.complaints.example.com", "/api/agents"): ("routing", "/api/agents"),
    ("carrier.complaints.example.com", "/api/complaints/c-1/shipments"): ("carrier", "/api/complaints/c-1/shipments"),
    ("carrier.complaints.example.com", "/api/webhooks/tracking"): ("carrier", "/api/webhooks/tracking"),
}
#: ...and what stays inside the cluster: (host, path) -> the Service it must not reach.
NOT_PUBLIC = {
    ("routing.complaints.example.com", "/health/ready"): "routing",
    ("complaints.example.com", "/notify/api/notifications"): "notify",
}


# ---- rendering -----------------------------------------------------------------------------------


def render(target: str) -> list[dict]:
    """The objects ``tools/k8s/render.sh`` prints for an overlay name or a kustomization directory."""
    done = subprocess.run([str(RENDER), target], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode == 3:  # render.sh: no kustomize yet and no `go` to build it
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, f"render.sh {target} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


# ---- rules ---------------------------------------------------------------------------------------


def ref(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(objects: Iterable[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def selects(selector: dict | None, labels: dict) -> bool:
    wanted = (selector or {}).get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def documented_variables() -> dict[str, dict[str, str]]:
    """docs/configuration.md's tables: section ("every service (kernel)", "intake") -> variable -> default."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in CONFIGURATION_DOC.read_text().splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), {})
        elif current is not None and (row := re.match(r"\|\s*`([A-Z0-9_]+)`\s*\|\s*`?([^`|]*)`?\s*\|", line)):
            current[row[1]] = row[2].strip()
    return sections


def container_ports(container: dict) -> set:
    """The container's ports, by name and by number (a probe or policy may use either)."""
    ports = container.get("ports", [])
    return {p["name"] for p in ports if "name" in p} | {p["containerPort"] for p in ports}


def container_faults(where: str, pod: dict, container: dict) -> list[str]:
    faults = []
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        if not resources.get(part):
            faults.append(f"{where}: no resources.{part}")
            continue
        faults += [
            f"{where}: no resources.{part}.{r}"
            for r in ("cpu", "memory", "ephemeral-storage")
            if r not in resources[part]
        ]
    port_names = container_ports(container)
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        got = (container.get(probe) or {}).get("httpGet")
        if not got:
            faults.append(f"{where}: no {probe}")
        elif got.get("path") != path or got.get("port") not in port_names:
            faults.append(f"{where}: {probe} must GET {path} on the container's HTTP port, not {got}")
    sc, pod_sc = container.get("securityContext") or {}, pod.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False:
        faults.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        faults.append(f"{where}: readOnlyRootFilesystem is not true")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        faults.append(f"{where}: capabilities do not drop ALL")
    if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
        faults.append(f"{where}: runAsNonRoot is not true")
    seccomp = {(c.get("seccompProfile") or {}).get("type") for c in (sc, pod_sc)}
    if "RuntimeDefault" not in seccomp:
        faults.append(f"{where}: seccompProfile is not RuntimeDefault")
    tmp_volumes = {m["name"] for m in container.get("volumeMounts", []) if m.get("mountPath") == "/tmp"}
    if not any(v["name"] in tmp_volumes and "emptyDir" in v for v in pod.get("volumes", [])):
        faults.append(f"{where}: no emptyDir mounted on /tmp")
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if "@sha256:" not in image and tag in ("", "latest"):
        faults.append(f"{where}: image {image!r} has no pinned tag (':latest' or none)")
    for var in container.get("env", []):
        if var["name"] in SECRET_VARIABLES and "secretKeyRef" not in (var.get("valueFrom") or {}):
            faults.append(f"{where}: {var['name']} must come from a Secret")
    if "MONGODB_URL" not in {v["name"] for v in container.get("env", [])}:
        faults.append(f"{where}: MONGODB_URL is not taken from a Secret")
    return faults


def configuration_faults(deployment: dict, container: dict, objects: list[dict]) -> list[str]:
    """The ConfigMaps hold documented variables only, and every documented one is set somewhere."""
    name, where = deployment["metadata"]["name"], ref(deployment)
    documented = documented_variables()
    known = {**documented.get("every service (kernel)", {}), **documented.get(name, {})}
    config_maps = {o["metadata"]["name"]: o for o in of_kind(objects, "ConfigMap")}
    keys: set[str] = set()
    faults = []
    for source in container.get("envFrom", []):
        cm_name = (source.get("configMapRef") or {}).get("name")
        if cm_name is None:
            continue
        if cm_name not in config_maps:
            faults.append(f"{where}: envFrom ConfigMap {cm_name} is not in the manifests")
            continue
        keys |= set(config_maps[cm_name].get("data", {}))
    keys |= {v["name"] for v in container.get("env", [])}
    faults += [
        f"{where}: {k} is set but not documented in docs/configuration.md"
        for k in sorted(keys)
        if k not in known and not k.startswith("OTEL_")
    ]
    faults += [
        f"{where}: {k} (documented) is set by no ConfigMap or Secret"
        for k, default in sorted(known.items())
        if k not in keys and default != "None"
    ]
    faults += [
        f"{where}: {k} is a credential but sits in a ConfigMap"
        for cm in config_maps.values()
        for k in cm.get("data", {})
        if k in SECRET_VARIABLES
    ]
    if "OTEL_EXPORTER_OTLP_ENDPOINT" not in keys:
        faults.append(f"{where}: OTEL_EXPORTER_OTLP_ENDPOINT is not configurable")
    return faults


def network_policy_faults(
    deployment: dict, pod_labels: dict, http_ports: set, objects: list[dict], kafka_port: int
) -> list[str]:
    name, where = deployment["metadata"]["name"], ref(deployment)
    policies = [p for p in of_kind(objects, "NetworkPolicy") if selects(p["spec"].get("podSelector"), pod_labels)]
    if not policies:
        return [f"{where}: no NetworkPolicy selects its pods"]
    faults = []
    for policy in policies:
        spec = policy["spec"]
        if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
            faults.append(f"{ref(policy)}: policyTypes must be Ingress and Egress")
        for rule in spec.get("ingress", []):
            if not rule.get("from"):
                faults.append(f"{ref(policy)}: an ingress rule admits every source")
            if any("podSelector" not in peer or "namespaceSelector" not in peer for peer in rule.get("from", [])):
                faults.append(f"{ref(policy)}: ingress must name the controller's pods by label in their namespace")
            if not rule.get("ports") or any(p.get("port") not in http_ports for p in rule["ports"]):
                faults.append(f"{ref(policy)}: ingress must be to the HTTP port only")
        egress = {p.get("port") for rule in spec.get("egress", []) for p in rule.get("ports") or [{}]}
        needed = EGRESS_PORTS | {kafka_port}
        allowed = needed | EXTRA_EGRESS_PORTS.get(name, set())
        faults += [f"{ref(policy)}: egress to port {p} is not needed" for p in sorted(egress - allowed, key=str)]
        faults += [f"{ref(policy)}: no egress to port {p}" for p in sorted(needed - egress)]
    return faults


def config_value(objects: list[dict], key: str, config_map: str = "complaint-platform") -> str | None:
    """A ConfigMap's value by the generator's name (the rendered name ends in a content hash)."""
    return next(
        (
            c.get("data", {}).get(key)
            for c in of_kind(objects, "ConfigMap")
            if re.fullmatch(rf"{re.escape(config_map)}(-[a-z0-9]{{10}})?", c["metadata"]["name"])
        ),
        None,
    )


def kafka_user_faults(deployment: dict, objects: list[dict]) -> list[str]:
    """The service's KafkaUser exists, is the user its ConfigMap names, and may join its group."""
    name, where = deployment["metadata"]["name"], ref(deployment)
    username = config_value(objects, "KAFKA_SASL_USERNAME", name)
    users = {u["metadata"]["name"]: u for u in of_kind(objects, "KafkaUser")}
    if username not in users:
        return [f"{where}: no KafkaUser {username!r} (its KAFKA_SASL_USERNAME)"]
    spec = users[username]["spec"]
    acls = spec.get("authorization", {}).get("acls", [])
    group = f"{config_value(objects, 'CONSUMER_GROUP_PREFIX')}{name}"
    faults = []
    if spec.get("authentication", {}).get("type") != "scram-sha-512":
        faults.append(f"KafkaUser/{username}: authentication is not scram-sha-512")
    if not any(
        a["resource"]["type"] == "group"
        and group.startswith(a["resource"]["name"])
        and a["resource"].get("patternType") == "prefix"
        and "Read" in a.get("operations", [])
        for a in acls
    ):
        faults.append(f"KafkaUser/{username}: no prefix ACL lets it read as group {group}")
    if not any(
        a["resource"]["type"] == "topic"
        and TOPICS[name].startswith(a["resource"]["name"])
        and "Write" in a.get("operations", [])
        for a in acls
    ):
        faults.append(f"KafkaUser/{username}: may not write its topic {TOPICS[name]}")
    return faults


def autoscaler_faults(deployment: dict, autoscaler: str, objects: list[dict]) -> list[str]:
    name, where = deployment["metadata"]["name"], ref(deployment)
    hpas = [h for h in of_kind(objects, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == name]
    scaled = [s for s in of_kind(objects, "ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == name]
    if len(hpas) + len(scaled) != 1:  # KEDA refuses a workload another HPA already scales
        return [f"{where}: needs exactly one autoscaler, has {len(hpas)} HPA and {len(scaled)} ScaledObject"]
    faults = []
    if autoscaler == "ScaledObject" and not scaled:
        faults.append(f"{where}: is not scaled by a KEDA ScaledObject")
    for hpa in hpas:
        spec = hpa["spec"]
        if not any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in spec.get("metrics", [])):
            faults.append(f"{ref(hpa)}: does not scale on CPU")
        if spec["maxReplicas"] > PARTITIONS:
            faults.append(f"{ref(hpa)}: maxReplicas above the {PARTITIONS} partitions")
    for so in scaled:
        spec, triggers = so["spec"], so["spec"].get("triggers", [])
        kafka = [t for t in triggers if t["type"] == "kafka"]
        groups = {t["metadata"].get("consumerGroup") for t in kafka}
        topics = {t["metadata"].get("topic") for t in kafka}
        group = f"{config_value(objects, 'CONSUMER_GROUP_PREFIX')}{name}"
        if not kafka or groups != {group}:
            faults.append(f"{ref(so)}: Kafka triggers must watch consumer group {group!r}, not {groups or 'none'}")
        auths = {a["metadata"]["name"]: a for a in of_kind(objects, "TriggerAuthentication")}
        for trigger in kafka:
            auth = auths.get((trigger.get("authenticationRef") or {}).get("name"))
            auth_spec = (auth or {}).get("spec", {})
            params = {p["parameter"] for source in ("secretTargetRef", "env") for p in auth_spec.get(source, [])}
            if trigger["metadata"].get("sasl") != "scram_sha512" or trigger["metadata"].get("tls") != "enable":
                faults.append(f"{ref(so)}: trigger {trigger.get('name')} does not use SASL/SCRAM-SHA-512 over TLS")
            if not {"username", "password", "ca"} <= params:
                faults.append(
                    f"{ref(so)}: trigger {trigger.get('name')} has no TriggerAuthentication "
                    "with username, password and ca"
                )
        if topics != READS.get(name, topics) or not topics <= set(TOPICS.values()):
            faults.append(
                f"{ref(so)}: Kafka triggers watch {sorted(topics, key=str)}, "
                f"the group reads {sorted(READS.get(name, []))}"
            )
        if not any(t["type"] == "cpu" for t in triggers):
            faults.append(f"{ref(so)}: no CPU trigger")
        if spec.get("fallback") and any(t["type"] in ("cpu", "memory") for t in triggers):
            faults.append(f"{ref(so)}: KEDA rejects a fallback beside a cpu/memory trigger")
        if spec.get("maxReplicaCount", 100) > PARTITIONS:
            faults.append(f"{ref(so)}: maxReplicaCount above the {PARTITIONS} partitions")
    return faults


#: What a stop waits for besides the service's own calls: the outbox's last round and the producer's
#: flush with a healthy broker (a broker that is down is not waited for: the outbox keeps the rest).
DRAIN_ROUND_S = 10.0
#: Timeouts fixed in the adapters, not settings: the order system (carrier's records client:
#: 3 tries of 2 s), notify's account check (2 s) and SMTP (connect, then send: 10 s each).
ORDER_LOOKUP_S, ACCOUNT_CHECK_S, SMTP_STEP_S = 3 * 2.0, 2.0, 10.0


def carrier_lookup_s(setting) -> float:
    """The order lookup, then every package's carrier at once, each with its retries."""
    attempts = setting("CARRIER_ATTEMPTS")
    pauses = (attempts - 1) * setting("CARRIER_BACKOFF_MAX_S")
    return ORDER_LOOKUP_S + attempts * setting("CARRIER_TIMEOUT_S") + pauses


def longest_drain_s(name: str, objects: list[dict]) -> float:
    """How long SIGTERM may take to finish, from the settings the ConfigMaps give the service, in
    the order a stop runs: the preStop pause; the HTTP requests in flight (uvicorn waits for them;
    carrier's re-check asks the carriers while the agent waits, the others ask the order system at
    most); the message in flight (cut at DRAIN_TIMEOUT_S where the kernel has that setting); the
    outbox's last round and the producer's flush."""
    deployment = next(d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] == name)
    pre_stop = deployment["spec"]["template"]["spec"]["containers"][0].get("lifecycle", {}).get("preStop", {})
    pause = float((pre_stop.get("exec", {}).get("command") or ["sleep", "0"])[-1])

    def setting(key: str) -> float:
        return float(config_value(objects, key, name) or config_value(objects, key))

    request = carrier_lookup_s(setting) if name == "carrier" else ORDER_LOOKUP_S
    if name == "carrier":
        message = carrier_lookup_s(setting)
    elif name == "notify":  # the account check, then one SMTP hand-over (a retry is a timer, not a wait)
        message = ACCOUNT_CHECK_S + 2 * SMTP_STEP_S
    else:  # a message whose handler failed waits out one redelivery pause
        message = setting("RETRY_BACKOFF_MAX_S")
    if config_value(objects, "DRAIN_TIMEOUT_S") is not None:
        message = min(message, setting("DRAIN_TIMEOUT_S"))
    return pause + request + message + DRAIN_ROUND_S


def deployment_faults(deployment: dict, objects: list[dict], autoscaler: str, kafka_port: int) -> list[str]:
    where = ref(deployment)
    template = deployment["spec"]["template"]
    pod, pod_labels = template["spec"], template["metadata"].get("labels", {})
    faults = [f"{where}: pod template has no label {k}" for k in COMMON_LABELS if k not in pod_labels]
    drain = longest_drain_s(deployment["metadata"]["name"], objects)
    if pod.get("terminationGracePeriodSeconds", 30) < drain:
        faults.append(
            f"{where}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds', 30)} "
            f"is shorter than its longest drain, {drain:g} s"
        )
    accounts = {a["metadata"]["name"]: a for a in of_kind(objects, "ServiceAccount")}
    account = accounts.get(pod.get("serviceAccountName", "default"))
    if account is None:
        faults.append(f"{where}: runs as no ServiceAccount of its own")
    elif (account.get("automountServiceAccountToken"), pod.get("automountServiceAccountToken")) != (False, False):
        faults.append(f"{where}: mounts a service-account token (it never calls the Kubernetes API)")
    http_ports: set = set()
    for container in pod["containers"]:
        faults += container_faults(f"{where} container {container['name']}", pod, container)
        faults += configuration_faults(deployment, container, objects)
        http_ports |= container_ports(container)
    services = of_kind(objects, "Service")
    if not any(selects({"matchLabels": s["spec"].get("selector", {})}, pod_labels) for s in services):
        faults.append(f"{where}: no Service selects its pods")
    budgets = [b for b in of_kind(objects, "PodDisruptionBudget") if selects(b["spec"].get("selector"), pod_labels)]
    if not budgets:
        faults.append(f"{where}: no PodDisruptionBudget")
    faults += [f"{ref(b)}: minAvailable is not 1" for b in budgets if b["spec"].get("minAvailable") != 1]
    faults += network_policy_faults(deployment, pod_labels, http_ports, objects, kafka_port)
    faults += autoscaler_faults(deployment, autoscaler, objects)
    if config_value(objects, "KAFKA_SECURITY_PROTOCOL", "complaint-platform") == "SASL_SSL":
        faults += kafka_user_faults(deployment, objects)
    return faults


def topic_faults(objects: list[dict], replicas: int) -> list[str]:
    topics = {(t["spec"].get("topicName") or t["metadata"]["name"]): t for t in of_kind(objects, "KafkaTopic")}
    # What a topic holds, the services' producer must be able to copy to its DLQ (docs/adr/0024).
    max_bytes = config_value(objects, "KAFKA_MAX_MESSAGE_BYTES")
    faults = []
    for topic in TOPICS.values():
        for name, days in ((topic, 7), (f"{topic}.dlq", 30)):
            if name not in topics:
                faults.append(f"KafkaTopic {name}: missing")
                continue
            spec = topics[name]["spec"]
            config = spec.get("config", {})
            if spec.get("partitions") != PARTITIONS:
                faults.append(f"KafkaTopic {name}: partitions {spec.get('partitions')}, not {PARTITIONS}")
            if spec.get("replicas") != replicas:
                faults.append(f"KafkaTopic {name}: replicas {spec.get('replicas')}, not {replicas}")
            if int(config.get("retention.ms", -1)) != days * DAY_MS:
                faults.append(f"KafkaTopic {name}: retention.ms {config.get('retention.ms')}, not {days} days")
            if str(config.get("max.message.bytes")) != str(max_bytes):
                faults.append(
                    f"KafkaTopic {name}: max.message.bytes {config.get('max.message.bytes')}, "
                    f"not KAFKA_MAX_MESSAGE_BYTES ({max_bytes})"
                )
            if config.get("cleanup.policy") != "delete":
                faults.append(f"KafkaTopic {name}: cleanup.policy is not delete")
            if int(config.get("min.insync.replicas", 1)) > replicas:
                faults.append(f"KafkaTopic {name}: min.insync.replicas above its replicas")
            if "strimzi.io/cluster" not in topics[name]["metadata"].get("labels", {}):
                faults.append(f"KafkaTopic {name}: no strimzi.io/cluster label")
    return faults


def manifest_faults(objects: list[dict], autoscaler: str, topic_replicas: int, kafka_port: int) -> list[str]:
    """Every way the rendered objects break our rules, one readable line each (empty: all good)."""
    faults = []
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        faults += [f"{ref(obj)}: no label {k}" for k in COMMON_LABELS if k not in labels]
        if labels.get("app.kubernetes.io/part-of") not in (None, PART_OF):
            faults.append(f"{ref(obj)}: part-of is not {PART_OF}")
    deployments = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "service"
    ]
    if not deployments:
        faults.append("no Deployment rendered")
    tags = {
        c["image"].rsplit("/", 1)[-1].partition(":")[2]
        for d in deployments
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    if len(tags) > 1:
        faults.append(f"the services' images have different tags in one overlay: {sorted(tags)}")
    for deployment in deployments:
        faults += deployment_faults(deployment, objects, autoscaler, kafka_port)
    faults += topic_faults(objects, topic_replicas)
    return faults


def path_matches(kind: str, pattern: str, path: str) -> bool:
    if kind in ("Exact",):
        return path == pattern
    return pattern == "/" or path == pattern.rstrip("/") or path.startswith(pattern.rstrip("/") + "/")


def route(objects: list[dict], host: str, path: str) -> tuple[str, str, bool] | None:
    """Where an Ingress or an HTTPRoute sends ``https://host/path``: (Service, path it gets, over TLS)."""
    found = []  # (length of the matched path, service, path the service gets, TLS)
    for ingress in of_kind(objects, "Ingress"):
        tls = any(host in t.get("hosts", []) and t.get("secretName") for t in ingress["spec"].get("tls", []))
        rewrite = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/rewrite-target")
        for rule in ingress["spec"].get("rules", []):
            for p in rule.get("host") == host and rule["http"]["paths"] or []:
                if path_matches(p["pathType"], p["path"], path):
                    found.append((len(p["path"]), p["backend"]["service"]["name"], rewrite or path, tls))
    gateways = {g["metadata"]["name"]: g for g in of_kind(objects, "Gateway")}
    for http_route in of_kind(objects, "HTTPRoute"):
        spec = http_route["spec"]
        if host not in spec.get("hostnames", []):
            continue
        listeners = [
            listener
            for parent in spec["parentRefs"]
            for listener in gateways.get(parent["name"], {}).get("spec", {}).get("listeners", [])
            if listener["name"] == parent.get("sectionName", listener["name"])
        ]
        tls = any(x["protocol"] == "HTTPS" and x.get("tls", {}).get("certificateRefs") for x in listeners)
        for rule in spec.get("rules", []):
            rewrite = next(
                (
                    f["urlRewrite"]["path"].get("replaceFullPath")
                    for f in rule.get("filters", [])
                    if f["type"] == "URLRewrite"
                ),
                None,
            )
            for match in rule.get("matches", []):
                kind = {"PathPrefix": "Prefix"}.get(match["path"]["type"], match["path"]["type"])
                if path_matches(kind, match["path"]["value"], path):
                    for backend in rule.get("backendRefs", []):
                        found.append((len(match["path"]["value"]), backend["name"], rewrite or path, tls))
    if not found:
        return None
    _, service, reaches, tls = max(found)
    return service, reaches, tls


def service_names() -> list[str]:
    """Services that exist so far: a package under services/ with an app module."""
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/app.py") if p.parent.name != "kernel")


# ---- the rendered overlays -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_keeps_the_rules(rendered, overlay):
    faults = manifest_faults(rendered[overlay], **OVERLAYS[overlay])
    assert faults == [], f"overlay {overlay}:\n" + "\n".join(faults)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_deployment_service_budget_and_network_policy(rendered, overlay):
    names = {
        d["metadata"]["name"]
        for d in of_kind(rendered[overlay], "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "service"
    }
    assert set(service_names()) <= names, f"no Deployment for {set(service_names()) - names} in {overlay}"
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        assert names <= {o["metadata"]["name"] for o in of_kind(rendered[overlay], kind)}, kind


@pytest.mark.parametrize("overlay", ["production", "production-gateway-api"])
def test_the_public_entry_points_are_reachable_over_tls_and_nothing_else_is(rendered, overlay):
    objects = rendered[overlay]
    for (host, path), (service, reaches) in ENTRY_POINTS.items():
        assert route(objects, host, path) == (service, reaches, True), f"https://{host}{path} in {overlay}"
    for (host, path), service in NOT_PUBLIC.items():
        assert (route(objects, host, path) or [None])[0] != service, f"https://{host}{path} reaches {service}"


def test_the_grace_period_covers_the_longest_drain_computed_from_the_settings(rendered):
    objects = rendered["production"]
    drains = {name: longest_drain_s(name, objects) for name in service_names()}
    carrier = 3 * 2 + 3 * 5 + 2 * 5  # the order lookup, then three tries of 5 s with two pauses of 5 s
    cut = float(config_value(objects, "DRAIN_TIMEOUT_S") or carrier)
    assert drains["carrier"] == 5 + carrier + min(carrier, cut) + 10 == max(drains.values())
    for deployment in of_kind(objects, "Deployment"):
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= drains["carrier"]


def test_the_local_overlay_runs_every_stand_in_its_services_are_pointed_at(rendered):
    objects = rendered["local"]
    named = {
        urlparse(value if "://" in value else f"smtp://{value}").hostname
        for config_map in of_kind(objects, "ConfigMap")
        for key, value in config_map.get("data", {}).items()
        if key.endswith("_URL") and "://" in value or key == "SMTP_HOST"
    }
    in_cluster = {host for host in named if host and "." not in host and host != "127.0.0.1"}
    assert in_cluster >= {"order-simulator", "carrier-simulator", "telephony-simulator", "mailpit"}
    for name in in_cluster:
        [deployment] = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] == name]
        pod = deployment["spec"]["template"]["spec"]
        assert any(s["metadata"]["name"] == name for s in of_kind(objects, "Service")), name
        assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"], name
        assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], name


def test_the_broken_overlay_fails_and_the_faults_name_what_is_missing():
    faults = manifest_faults(render("tools/k8s/broken"), **OVERLAYS["production"])
    text = "\n".join(faults)
    assert "Deployment/intake container intake: no readinessProbe" in faults, text
    assert "Deployment/intake container intake: no resources.limits" in faults, text
    assert any(":latest" in f for f in faults), text
    assert "KafkaTopic complaints.routing.v1.dlq: partitions 1, not 6" in faults, text


@pytest.mark.parametrize(
    "kind, fault",
    [
        ("PodDisruptionBudget", "Deployment/intake: no PodDisruptionBudget"),
        ("NetworkPolicy", "Deployment/intake: no NetworkPolicy selects its pods"),
        ("Service", "Deployment/intake: no Service selects its pods"),
        ("ScaledObject", "Deployment/intake: needs exactly one autoscaler, has 0 HPA and 0 ScaledObject"),
        ("KafkaUser", "Deployment/intake: no KafkaUser 'complaints-intake' (its KAFKA_SASL_USERNAME)"),
        (
            "TriggerAuthentication",
            "ScaledObject/intake: trigger lag-routing has no TriggerAuthentication with username, password and ca",
        ),
    ],
)
def test_a_missing_companion_object_is_named(rendered, kind, fault):
    objects = [o for o in rendered["production"] if o["kind"] != kind]
    assert fault in manifest_faults(objects, **OVERLAYS["production"])


def _grace_30(o):
    o["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30


def _no_ephemeral_storage(o):
    o["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].pop("ephemeral-storage")


def _whole_namespace(o):
    o["spec"]["ingress"][0]["from"][0].pop("podSelector")


def _token(o):
    o["automountServiceAccountToken"] = True


@pytest.mark.parametrize(
    "kind, name, breakage, fault",
    [
        (
            "Deployment",
            "carrier",
            _grace_30,
            "Deployment/carrier: terminationGracePeriodSeconds 30 is shorter than its longest drain",
        ),
        (
            "Deployment",
            "intake",
            _no_ephemeral_storage,
            "Deployment/intake container intake: no resources.limits.ephemeral-storage",
        ),
        (
            "NetworkPolicy",
            "routing",
            _whole_namespace,
            "NetworkPolicy/routing: ingress must name the controller's pods by label in their namespace",
        ),
        (
            "ServiceAccount",
            "notify",
            _token,
            "Deployment/notify: mounts a service-account token (it never calls the Kubernetes API)",
        ),
    ],
)
def test_a_broken_packaging_rule_is_named(rendered, kind, name, breakage, fault):
    objects = copy.deepcopy(rendered["production"])
    breakage(next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name))
    assert any(f.startswith(fault) for f in manifest_faults(objects, **OVERLAYS["production"]))


def test_a_missing_dead_letter_topic_is_named(rendered):
    objects = [o for o in rendered["production"] if o["metadata"]["name"] != "complaints.notify.v1.dlq"]
    assert "KafkaTopic complaints.notify.v1.dlq: missing" in manifest_faults(objects, **OVERLAYS["production"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_match_the_kubernetes_schemas(rendered, overlay):
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate (offline Kubernetes JSON schemas) is not installed; our own rules above still ran",
    )
    checked, errors = 0, []
    for obj in rendered[overlay]:
        for version in ("1.30.0", kv.utils.latest_version()):
            try:
                kv.validate(obj, version, strict=True)
                checked += 1
            except kv.SchemaNotFoundError:  # KafkaTopic, ScaledObject: CRDs, covered by our rules
                break
            except kv.ValidationError as exc:
                errors.append(f"{ref(obj)} (Kubernetes {version}): {exc.message} at {list(exc.path)}")
    assert checked and not errors, "\n".join(errors)


def test_the_schema_check_rejects_a_misspelled_field(rendered):
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    deployment = of_kind(rendered["production"], "Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, kv.utils.latest_version(), strict=True)


# ---- the image -----------------------------------------------------------------------------------


def dockerfile_faults(text: str) -> list[str]:
    """Lint of a multi-stage service Dockerfile (no engine here to build it)."""
    lines = re.sub(r"\\\n", " ", text).splitlines()
    instructions = [
        (m[1].upper(), m[2].strip())
        for line in lines
        if (m := re.match(r"\s*(\w+)\s+(.*)", line)) and not line.lstrip().startswith("#")
    ]
    args = dict(re.match(r"(\w+)=?(.*)", v).groups() for k, v in instructions if k == "ARG")
    stages: list[dict] = []
    for key, value in instructions:
        if key == "FROM":
            image, _, alias = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), value).partition(" AS ")
            stages.append({"image": image.strip(), "alias": alias.strip(), "body": []})
        elif stages:
            stages[-1]["body"].append((key, value))
    aliases = {s["alias"] for s in stages}
    faults = []
    if len(stages) < 2 or not any(k == "COPY" and "--from=" in v for s in stages for k, v in s["body"]):
        faults.append("not multi-stage: the final image must copy the build stage's venv")
    for stage in stages:
        if stage["image"] not in aliases and not re.fullmatch(
            r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", stage["image"]
        ):
            faults.append(f"base image {stage['image']!r} is not a patch-pinned python:3.11.x-slim tag")
    build = {s["alias"] for s in stages if any("pip install" in v for k, v in s["body"] if k == "RUN")}
    for stage in stages:
        body = " ".join(v for k, v in stage["body"] if k == "RUN")
        if stage["alias"] not in build and re.search(r"apt-get install|build-essential|gcc|g\+\+", body):
            faults.append(f"stage {stage['alias'] or stage['image']}: installs build tools outside the build stage")
        if "[test]" in body:
            faults.append(f"stage {stage['alias']}: installs the test extras")
    users = [v for k, v in instructions if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0") or not users[-1].split(":")[0].isdigit():
        faults.append(f"the final USER must be a numeric non-root uid, not {users[-1] if users else 'unset'}")
    if any(k == "HEALTHCHECK" for k, _ in instructions):
        faults.append("HEALTHCHECK is set (Kubernetes probes the service)")
    labels = " ".join(v for k, v in instructions if k == "LABEL")
    faults += [
        f"no OCI label org.opencontainers.image.{key} (which release, commit and repository)"
        for key in ("version", "revision", "source")
        if f"org.opencontainers.image.{key}=" not in labels
    ]
    if ("ENTRYPOINT", '["python", "-m"]') not in instructions:
        faults.append('ENTRYPOINT is not ["python", "-m"]')
    return faults


def dockerfile_stages() -> dict[str, str]:
    """Stage name -> the module its CMD runs."""
    stages, current = {}, None
    for line in DOCKERFILE.read_text().splitlines():
        if m := re.match(r"FROM \S+ AS (\S+)", line):
            current = m[1]
        elif (m := re.match(r"CMD \[\"([\w.]+)\"", line)) and current:
            stages[current] = m[1]
    return stages


def test_the_service_dockerfile_keeps_the_rules():
    assert dockerfile_faults(DOCKERFILE.read_text()) == []


def test_every_service_has_an_image_stage_that_runs_its_app_module():
    stages = dockerfile_stages()
    for service in service_names():
        assert stages.get(service) == f"services.{service}.app", f"no stage {service} in {DOCKERFILE.name}"


@pytest.mark.parametrize(
    "breakage, fault",
    [
        (("USER 10001:10001", "USER root"), "the final USER must be a numeric non-root uid, not root"),
        (("ENTRYPOINT", 'HEALTHCHECK CMD ["true"]\nENTRYPOINT'), "HEALTHCHECK is set (Kubernetes probes the service)"),
        (
            ("ARG PYTHON_IMAGE=python:3.11.14-slim-trixie", "ARG PYTHON_IMAGE=python:latest"),
            "base image 'python:latest' is not a patch-pinned python:3.11.x-slim tag",
        ),
        (
            ("WORKDIR /app", "RUN apt-get update && apt-get install -y build-essential\nWORKDIR /app"),
            "stage runtime: installs build tools outside the build stage",
        ),
        (
            ("COPY --from=build /opt/venv /opt/venv", "COPY . /app"),
            "not multi-stage: the final image must copy the build stage's venv",
        ),
    ],
)
def test_the_dockerfile_lint_names_each_broken_rule(breakage, fault):
    old, new = breakage
    text = DOCKERFILE.read_text()
    assert old in text
    assert fault in dockerfile_faults(text.replace(old, new, 1))


def test_the_build_context_leaves_out_what_the_image_does_not_need():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".cache", ".venv", "tests", "node_modules", ".git"} <= ignored


# ---- compose -------------------------------------------------------------------------------------


def compose_command() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    return None


def test_docker_compose_accepts_the_compose_file():
    command = compose_command()
    if command is None:
        pytest.skip(
            "no `docker compose` here (the docker client has no compose plugin, no docker-compose): "
            "infra/compose.yaml is checked by our own rules in test_the_compose_file_keeps_our_rules"
        )
    done = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_compose_file_keeps_our_rules():
    """A YAML parse and our rules (run whether or not `docker compose config` is available)."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"kafka", "mongo", "intake", "order-simulator", "mailpit"} <= set(services)
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", services["kafka"]["image"])
    assert re.fullmatch(r"mongo:[78](\.\d+)*", services["mongo"]["image"])
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["mongo"]["command"][:2] == ["--replSet", "rs0"]
    assert "rs.initiate" in " ".join(services["mongo"]["healthcheck"]["test"])
    for name in ("kafka", "mongo", "intake", "order-simulator"):
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"
    for name in ("mailpit",):
        assert not services[name]["image"].endswith(":latest")
    stages = dockerfile_stages()
    for name in (*service_names(), "order-simulator"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["args"]["SERVICE"] in stages, f"{name}: no such Dockerfile stage"
    documented = documented_variables()
    for name in service_names():
        env = services[name]["environment"]
        known = {**documented["every service (kernel)"], **documented.get(name, {})}
        assert {k for k in env if not k.startswith("OTEL_")} <= set(known), f"{name}: undocumented variables"
        assert env["HTTP_HOST"] == "0.0.0.0" and env["KAFKA_BOOTSTRAP_SERVERS"] and env["MONGODB_URL"]
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["mongo"]["condition"] == "service_healthy"
