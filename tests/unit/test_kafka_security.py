"""Every Kafka client of ours connects with the same TLS and SASL settings, taken from one place."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.kernel.kafka import client_config, make_broker, security_config
from services.kernel.settings import KernelSettings

ROOT = Path(__file__).resolve().parents[2]

#: A service behind Strimzi's SCRAM-SHA-512 listener over TLS, the production overlay's shape.
STRIMZI = {
    "kafka_bootstrap_servers": "complaints-kafka-bootstrap.kafka.svc:9093",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "complaints-intake",
    "kafka_sasl_password": "from-the-kafka-user-secret",
    "kafka_ssl_ca_location": "/etc/kafka-ca/ca.crt",
}


@pytest.fixture(autouse=True)
def _no_kafka_settings_from_the_environment(monkeypatch):
    """These tests say what the settings' defaults and given values make; ``make test`` exports the
    test stack's Kafka user (KAFKA_SASL_*), which the settings would read."""
    for name in [n for n in os.environ if n.startswith("KAFKA_")]:
        monkeypatch.delenv(name)


def test_a_sasl_over_tls_service_gives_librdkafka_its_user_password_mechanism_and_the_cluster_ca():
    assert client_config(KernelSettings(**STRIMZI)) == {
        "bootstrap.servers": "complaints-kafka-bootstrap.kafka.svc:9093",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "complaints-intake",
        "sasl.password": "from-the-kafka-user-secret",
        "ssl.ca.location": "/etc/kafka-ca/ca.crt",
    }


def test_mutual_tls_carries_the_client_certificate_and_key_and_no_sasl():
    config = security_config(
        KernelSettings(
            kafka_security_protocol="SSL",
            kafka_ssl_ca_location="/ca.crt",
            kafka_ssl_certificate_location="/user.crt",
            kafka_ssl_key_location="/user.key",
            kafka_ssl_key_password="k",
        )
    )
    assert config == {
        "security.protocol": "ssl",
        "ssl.ca.location": "/ca.crt",
        "ssl.certificate.location": "/user.crt",
        "ssl.key.location": "/user.key",
        "ssl.key.password": "k",
    }


def test_the_local_stack_connects_in_plaintext_with_no_credentials():
    assert security_config(KernelSettings()) == {"security.protocol": "plaintext"}


def test_the_broker_s_producer_consumers_and_admin_all_carry_the_security_settings():
    connection = make_broker(KernelSettings(**STRIMZI)).config.broker_config.connection_config
    expected = security_config(KernelSettings(**STRIMZI))
    for config in (connection.producer_config, connection.consumer_config, connection.admin_config):
        assert expected.items() <= config.items()


def test_only_the_kafka_module_says_how_a_client_connects():
    """A client built elsewhere with its own ``bootstrap.servers`` would skip TLS and SASL."""
    saying = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "services").rglob("*.py")
        if '"bootstrap.servers"' in path.read_text()
    ]
    assert saying == ["services/kernel/kafka.py"]


def test_every_kafka_client_a_test_makes_connects_through_one_function():
    """On a stack with SASL (``stack.sh --auth``) a test client of its own making would be refused."""
    saying = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("*.py")
        if '"bootstrap.servers"' in path.read_text() and path.parent.name != "unit"
    ]
    assert saying == [], "use tests.integration.support.kafka_config"


@pytest.mark.parametrize(
    "settings, said",
    [
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "complaints-intake"},
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set with KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certificate_location": "/user.crt"},
            "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together",
        ),
    ],
)
def test_incomplete_kafka_credentials_are_refused_at_start_naming_the_variables(settings, said):
    with pytest.raises(ValidationError, match=said):
        KernelSettings(**settings)


def test_consumer_groups_carry_the_configurable_prefix_the_acls_are_written_for():
    assert KernelSettings(service_name="routing").consumer_group == "complaints.routing"
    assert KernelSettings(service_name="routing", consumer_group_prefix="shop-eu.").consumer_group == "shop-eu.routing"
