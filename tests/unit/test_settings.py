"""A service refuses to start on a missing or invalid setting, naming the variable and the rule."""

import pytest

from services.intake.settings import IntakeSettings
from services.kernel.process import load_settings


@pytest.mark.parametrize("env, said", [
    ({"MONGODB_URL": "postgres://db/"}, "invalid setting MONGODB_URL: must start with mongodb://"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "kafka"}, "invalid setting KAFKA_BOOTSTRAP_SERVERS: must be host:port"),
    ({"MAX_BODY_BYTES": "-1"}, "invalid setting MAX_BODY_BYTES: Input should be greater than 0"),
    ({"HTTP_PORT": "eighty"}, "invalid setting HTTP_PORT: Input should be a valid integer"),
    ({"ENVIRONMENT": "production"}, "invalid settings: SIGNING_KEY must be set"),
    ({"TRUSTED_PROXIES": "10.0.0.0/8,ingress"}, "invalid setting TRUSTED_PROXIES: 'ingress' is not an IP address or CIDR"),
])
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


def test_production_starts_with_real_secrets(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SIGNING_KEY", "s" * 40)
    monkeypatch.setenv("INBOUND_WEBHOOK_SECRET", "w" * 30)
    assert load_settings(IntakeSettings).environment == "production"


def test_production_refuses_to_start_with_the_development_sign_in(monkeypatch, capsys):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SIGNING_KEY", "s" * 40)
    monkeypatch.setenv("INBOUND_WEBHOOK_SECRET", "w" * 30)
    monkeypatch.setenv("DEV_SIGN_IN", "true")
    with pytest.raises(SystemExit):
        load_settings(IntakeSettings)
    assert "invalid settings: DEV_SIGN_IN must be false when ENVIRONMENT=production" in capsys.readouterr().err
