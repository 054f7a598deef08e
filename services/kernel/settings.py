"""Settings every service shares, read from environment variables (defaults run the local stack)."""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network
from typing import ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kernel.auth import key_ring
from services.kernel.client_address import trusted_networks

#: What no real deployment points at: the reserved example domains (RFC 2606) and the all-zero
#: telephony account of the manifests' templates.
PLACEHOLDER = re.compile(r"(?i)\bexample\.(com|net|org)\b|\.example\b|\bAC0{32}\b")
BOOTSTRAP = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}(,[A-Za-z0-9_.\-\[\]:]+:\d{1,5})*$")


class KernelSettings(BaseSettings):
    """Connection and tuning settings; each is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    environment: Literal["local", "staging", "production"] = Field(
        "local",
        description="`local`, `staging` or `production`; `production` refuses development defaults of "
        "secrets (e.g. SIGNING_KEY) and the development sign-in.",
    )
    service_name: str = Field("kernel", description="Name used in logs, traces and the database name.")
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    # TLS and SASL of every Kafka client (services.kernel.kafka.security_config); Strimzi's
    # listener with SCRAM-SHA-512 over TLS is SASL_SSL, its cluster CA mounted from a Secret.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How Kafka clients connect: `PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or "
        "`SASL_SSL` (SASL over TLS, e.g. Strimzi's `scram-sha-512` listener with `tls: true`).",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when KAFKA_SECURITY_PROTOCOL is SASL_*."
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user (the service's Strimzi KafkaUser, e.g. `complaints-intake`); needed with SASL_*."
    )
    kafka_sasl_password: str | None = Field(
        None,
        description="SASL password (from a Secret: Strimzi's KafkaUser Secret, key `password`); needed with SASL_*.",
    )
    kafka_ssl_ca_location: str | None = Field(
        None,
        description="PEM file of the CA that signed the brokers' certificates (Strimzi: the "
        "`<cluster>-cluster-ca-cert` Secret's `ca.crt`); unset: the system's CAs.",
    )
    kafka_ssl_certificate_location: str | None = Field(
        None, description="PEM client certificate for mutual TLS (Strimzi `tls` authentication: `user.crt`)."
    )
    kafka_ssl_key_location: str | None = Field(
        None, description="PEM private key of the client certificate (Strimzi: `user.key`)."
    )
    kafka_ssl_key_password: str | None = Field(None, description="Password of the client key, if it has one.")
    consumer_group_prefix: str = Field(
        "complaints.",
        description="Prefix of every consumer group of ours (`complaints.intake`, the dead-letter "
        "tools' groups): groups stay apart on a shared cluster, and one prefix ACL covers them.",
    )
    mongodb_url: str = Field("mongodb://127.0.0.1:27017/", description="MongoDB connection string.")
    mongodb_database: str | None = Field(
        None, description="Database of this service's log and read models (default complaints_<service>)."
    )
    create_topics: bool = Field(
        True, description="Create missing topics at start-up (false where Strimzi KafkaTopics own them)."
    )
    topic_partitions: int = Field(6, gt=0, description="Partitions of a topic the service creates.")
    outbox_poll_interval_s: float = Field(
        0.5, gt=0, description="How often the outbox relay looks for unpublished commits without a wake-up."
    )
    outbox_batch_size: int = Field(500, gt=0, description="Commits published per relay round.")
    lease_ttl_s: float = Field(
        3.0,
        gt=0,
        description="Lifetime of a role's lease (the log follower, which publishes and projects; the "
        "courier; each periodic task): a replica that dies holding it is replaced this long after its "
        "last renewal at most. The holder renews it every third of it, whatever its work is doing "
        "(docs/adr/0045).",
    )
    consumer_session_timeout_ms: int = Field(
        6000,
        ge=1000,
        description="Kafka consumer group session timeout: how long a consumer that stopped heartbeating "
        "keeps its partitions, and how long a group waits for its old members after a broker restart. "
        "The brokers' group.min.session.timeout.ms (6000 by default) is its floor. With one broker, "
        "shorter is quicker back after its restart (the local stack's single broker allows 3000, which "
        "its services use: docs/adr/0039); with several, keep it longer than the brokers take to move a "
        "dead broker's groups, so members keep their ids (docs/adr/0043).",
    )
    consumer_fetch_wait_ms: int = Field(
        100,
        ge=0,
        description="Kafka fetch.wait.max.ms: how long the broker holds a fetch while a partition has "
        "nothing new. It adds no latency (a fetch returns as soon as one message arrives); a short one "
        "makes every idle consumer ask again and again (10 ms: ~100 fetches a second each).",
    )
    consumer_poll_s: float = Field(
        0.1,
        gt=0,
        le=1,
        description="How long one poll of the consumer waits for a message in its thread; it returns "
        "as soon as one arrives. Shorter polls cost a thread hand-off each while idle.",
    )
    max_in_flight_writes: int = Field(
        64,
        ge=1,
        le=10_000,
        description="HTTP writes (POST, PUT, PATCH, DELETE) a process handles at once; more wait their turn.",
    )
    write_queue_timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How long a write may wait for its turn before it is refused with 503 and Retry-After.",
    )
    drain_timeout_s: float = Field(
        10.0,
        gt=0,
        le=120,
        description="At stop: how long the messages already taken may take to finish (the rest are redelivered).",
    )
    consumer_partition_queue: int = Field(
        16,
        ge=1,
        le=1000,
        description="Messages polled ahead per partition while its worker is busy: "
        "the partitions of a consumer are handled side by side, each in order.",
    )
    retry_backoff_max_s: float = Field(
        2.0, gt=0, description="Longest pause before redelivering after a transient failure (store or broker down)."
    )
    startup_timeout_s: float = Field(10.0, gt=0, description="How long start-up waits for broker and store.")
    kafka_commit_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Longest wait for an offset commit; a commit that takes longer counts as a "
        "transient failure (the message is redelivered, found in the inbox, and committed again).",
    )
    kafka_commit_interval_s: float = Field(
        1.0,
        ge=0,
        le=5,
        description="Least time between two offset commits of a consumer: offsets that become due "
        "meanwhile are committed together. Longer: fewer commits for the broker and less CPU in every "
        "service (docs/adr/0048); a crash redelivers up to this much more (recognised by the inbox, "
        "applied once).",
    )
    kafka_reconnect_backoff_max_ms: int = Field(
        1000,
        ge=10,
        description="librdkafka reconnect.backoff.max.ms: the longest pause between attempts to "
        "reach a broker that went away (librdkafka's 10 s default delays recovery by as much).",
    )
    mongodb_server_selection_timeout_ms: int = Field(
        2000, ge=100, description="How long a store operation waits for a reachable server before it fails."
    )
    mongodb_connect_timeout_ms: int = Field(2000, ge=100, description="Store connection set-up timeout.")
    mongodb_socket_timeout_ms: int = Field(
        10000, ge=100, description="Longest wait for one answer of the store on an open connection."
    )
    mongodb_timeout_ms: int = Field(
        0,
        ge=0,
        description="PyMongo timeoutMS for every store operation of the service (0: none; HTTP "
        "requests and probes have their own deadline, STORE_REQUEST_TIMEOUT_S). A cursor counts as one "
        "operation, so set it above the longest rebuild's read.",
    )
    mongodb_max_pool_size: int = Field(
        20,
        ge=1,
        description="Most store commands one process has in flight (its driver's pool). FerretDB on "
        "SQLite gives each database 100 connections and an update holds two: 100 updates at once on "
        "one database deadlock it for good (ADR 0038), so keep the sum over a service's replicas "
        "below 50.",
    )
    mongodb_heartbeat_ms: int = Field(
        2000,
        ge=500,
        description="How often the store's driver checks the server (it notices an outage and the return that fast).",
    )
    store_request_timeout_s: float = Field(
        3.0,
        gt=0,
        description="Deadline of the store operations of one HTTP request: past it the request is "
        "refused with 503 and Retry-After.",
    )
    probe_timeout_s: float = Field(
        1.5, gt=0, description="Deadline of each check of /health/ready (under the probes' timeoutSeconds)."
    )
    liveness_stall_s: float = Field(
        120.0,
        gt=0,
        description="A consumer with work waiting that has committed nothing for this long is "
        "stuck: /health/live fails so that the orchestrator restarts the process.",
    )
    stop_timeout_s: float = Field(
        20.0,
        gt=0,
        description="After SIGTERM the process exits within this time even if a broker or store "
        "call hangs (under the pod's terminationGracePeriodSeconds).",
    )
    kafka_max_message_bytes: int = Field(
        1_048_588,
        ge=10_000,
        description="The largest Kafka message, the same for our producer (librdkafka "
        "message.max.bytes, whose own default of 1,000,000 is below the broker's) and the topics we create and "
        "declare (max.message.bytes): a message that reached a topic can be copied to its DLQ.",
    )
    consumer_max_attempts: int = Field(
        10,
        ge=2,
        description="Deliveries of one message that fail the same way, the store and broker reachable, "
        "before it is no longer taken for transient and goes to the DLQ (an outage is retried for ever).",
    )
    partition_stuck_s: float = Field(
        30.0,
        gt=0,
        description="A partition with lag that has committed nothing for this long is reported stuck: "
        "one WARNING line and `stuck` in /health/ready (well before LIVENESS_STALL_S restarts the process).",
    )
    outage_reminder_s: float = Field(
        30.0, gt=0, description="While a dependency stays away, one reminder line per this many seconds."
    )
    log_level: str = Field("INFO", description="Log level of the service's JSON logs.")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The process's event loop: `uvloop` (libuv, in C: less CPU per message and request, "
        "docs/adr/0046) or `asyncio` (the standard library's, to rule uvloop out when chasing a fault).",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated IPs or CIDRs of the proxies (the ingress) whose X-Forwarded-For "
        "names the caller; empty: the TCP peer is the caller, whatever the header says.",
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        if not BOOTSTRAP.match(value):
            raise ValueError("must be host:port[,host:port…]")
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> Self:
        # Named at start-up, not as an authentication failure in the broker's log minutes later.
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set with "
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
            )
        if bool(self.kafka_ssl_certificate_location) != bool(self.kafka_ssl_key_location):
            raise ValueError("KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together (mutual TLS)")
        return self

    @property
    def consumer_group(self) -> str:
        """This service's consumer group: the prefix and the service's name (``complaints.intake``)."""
        return f"{self.consumer_group_prefix}{self.service_name}"

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        trusted_networks(value)
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return trusted_networks(self.trusted_proxies)

    @field_validator("mongodb_url")
    @classmethod
    def _mongodb_url(cls, value: str) -> str:
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"complaints_{self.service_name}"

    #: Secrets that production must set (not their development default), with their least length.
    #: A service lists its own; checked once, here, for every service.
    production_secrets: ClassVar[dict[str, int]] = {}

    @model_validator(mode="after")
    def _real_secrets_in_production(self) -> Self:
        if self.environment != "production":
            return self
        fields = type(self).model_fields
        for name, least in self.production_secrets.items():
            value = getattr(self, name)
            if value == fields[name].default or len(value) < least:
                raise ValueError(
                    f"{name.upper()} must be set to a real secret"
                    + (f" of at least {least} characters" if least > 1 else "")
                    + " when ENVIRONMENT=production"
                )
        return self

    #: Settings whose local-stack default is no value for production (an address of a simulator,
    #: of this laptop): production must set them. A service lists its own.
    production_required: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _real_values_in_production(self) -> Self:
        """Production starts only with real values: a placeholder would start the pods and fail
        later, in front of customers; here it fails at once, naming the variable."""
        if self.environment != "production":
            return self
        fields = type(self).model_fields
        for name in self.production_required:
            if getattr(self, name) == fields[name].default:
                raise ValueError(
                    f"{name.upper()} must be set when ENVIRONMENT=production (the default "
                    f"{fields[name].default!r} is the local stack's)"
                )
        for name in fields:
            value = getattr(self, name)
            if isinstance(value, str) and (placeholder := PLACEHOLDER.search(value)):
                raise ValueError(
                    f"{name.upper()}={value!r} is a placeholder ({placeholder.group(0)}); set the real "
                    "value when ENVIRONMENT=production"
                )
        return self


#: The agent desktop and partner view of the local stack (intake's pages), which call routing's
#: and carrier's APIs from the browser.
DESK_ORIGINS = "http://127.0.0.1:8001,http://localhost:8001"


class HttpServiceSettings(KernelSettings):
    """What every service with an HTTP API has (intake, routing, carrier, notify), declared once.
    A service declares its own ``service_name`` and ``http_port`` defaults."""

    http_host: str = Field("127.0.0.1", description="Address the service's HTTP server listens on.")
    http_port: int = Field(8000, description="Port of the service's HTTP server.")
    signing_key: str = Field(
        "dev-only-signing-key-change-me-0123456789",
        description="HMAC key ring of the tokens the platform signs (customers' case links, agents' and "
        "supervisors' bearer tokens, notify's one-click links and per-case reply addresses): the same ring in "
        "every service. A secret in production. `kid:secret[,kid:secret…]`: the first signs, every listed key "
        "verifies (rotation: docs/deploying.md).",
    )
    max_body_bytes: int = Field(100_000, gt=0, description="Largest request body accepted (413 above).")

    @model_validator(mode="after")
    def _signing_key_ring(self) -> Self:
        """SIGNING_KEY is a key ring; in production each of its keys is a real secret, not only
        the whole value."""
        fields = type(self).model_fields
        try:
            ring = key_ring(self.signing_key)
        except ValueError as exc:
            raise ValueError(f"SIGNING_KEY: {exc}") from None
        least = self.production_secrets.get("signing_key", 1)
        development = key_ring(fields["signing_key"].default).signing_key
        if self.environment == "production":
            for kid, secret in ring.keys.items():
                if secret == development or len(secret) < least:
                    raise ValueError(
                        f"SIGNING_KEY key {kid!r} must be a real secret of at least {least} characters "
                        "when ENVIRONMENT=production"
                    )
        return self


class DeskApiSettings(HttpServiceSettings):
    """A service whose API the agent desktop's pages (served by intake) call from the browser."""

    cors_origins: str = Field(
        DESK_ORIGINS,
        description="Comma-separated origins whose pages may call this API "
        "from the browser: the agent desktop and partner view, served by intake.",
    )
