"""A service refuses to start on a missing or invalid setting, naming the variable and the rule."""

import pytest

from services.intake.settings import IntakeSettings
from services.kernel.startup import load_settings


@pytest.mark.parametrize(
    "env, said",
    [
        ({"MONGODB_URL": "postgres://db/"}, "invalid setting MONGODB_URL: must start with mongodb://"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "kafka"}, "invalid setting KAFKA_BOOTSTRAP_SERVERS: must be host:port"),
        ({"MAX_BODY_BYTES": "-1"}, "invalid setting MAX_BODY_BYTES: Input should be greater than 0"),
        ({"HTTP_PORT": "eighty"}, "invalid setting HTTP_PORT: Input should be a valid integer"),
        ({"ENVIRONMENT": "production"}, "invalid settings: SIGNING_KEY must be set"),
        (
            {"TRUSTED_PROXIES": "10.0.0.0/8,ingress"},
            "invalid setting TRUSTED_PROXIES: 'ingress' is not an IP address or CIDR",
        ),
    ],
)
def test_an_invalid_or_missing_setting_stops_the_service_with_a_line_naming_it(monkeypatch, capsys, env, said):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings(IntakeSettings)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err


def test_production_refuses_the_development_webhook_secret(monkeypatch, capsys):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SIGNING_KEY", "s" * 40)
    with pytest.raises(SystemExit):
        load_settings(IntakeSettings)
    assert "INBOUND_WEBHOOK_SECRET must be set" in capsys.readouterr().err


#: What a production intake must be given besides its secrets (docs/deploying.md).
INTAKE_IN_PRODUCTION = {
    "ORDER_SYSTEM_URL": "https://orders.internal.shop.co.uk",
    "ROUTING_PUBLIC_URL": "https://routing.help.shop.co.uk",
    "CARRIER_PUBLIC_URL": "https://carrier.help.shop.co.uk",
    # notify's public key for sealed codes (docs/adr/0025), not the local stack's
    "CODE_SEALING_PUBLIC_KEY": "hYHYovC_QNq-prwX6dacH0l4_yhpv5-U12pV_xX96js=",
}


def in_production(monkeypatch, **overrides: str) -> None:
    for name, value in {
        "ENVIRONMENT": "production",
        "SIGNING_KEY": "s" * 40,
        "INBOUND_WEBHOOK_SECRET": "w" * 30,
        **INTAKE_IN_PRODUCTION,
        **overrides,
    }.items():
        monkeypatch.setenv(name, value)


def test_production_starts_with_real_secrets_and_real_addresses(monkeypatch):
    in_production(monkeypatch)
    assert load_settings(IntakeSettings).environment == "production"


@pytest.mark.parametrize(
    "name, value, said",
    [
        ("ORDER_SYSTEM_URL", None, "ORDER_SYSTEM_URL must be set when ENVIRONMENT=production"),
        (
            "ROUTING_PUBLIC_URL",
            "https://routing.complaints.example.com",
            "ROUTING_PUBLIC_URL='https://routing.complaints.example.com' is a placeholder",
        ),
        (
            "CARRIER_PUBLIC_URL",
            "https://carrier.help.example",
            "CARRIER_PUBLIC_URL='https://carrier.help.example' is a placeholder",
        ),
    ],
)
def test_production_refuses_to_start_with_a_local_default_or_a_placeholder_naming_the_variable(
    monkeypatch, capsys, name, value, said
):
    in_production(monkeypatch)
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit):
        load_settings(IntakeSettings)
    assert said in capsys.readouterr().err


def test_production_refuses_to_start_with_the_development_sign_in(monkeypatch, capsys):
    in_production(monkeypatch, DEV_SIGN_IN="true")
    with pytest.raises(SystemExit):
        load_settings(IntakeSettings)
    assert "invalid settings: DEV_SIGN_IN must be false when ENVIRONMENT=production" in capsys.readouterr().err
