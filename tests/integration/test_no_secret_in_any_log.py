"""Issue 16: after the whole suite, no log line of any service holds a token, a one-time code or a
secret value. Runs last (tests/conftest.py); how it reads and what it looks for: log_scan.py."""

from __future__ import annotations

import httpx

from services.carrier.settings import CarrierSettings
from services.intake.settings import IntakeSettings
from services.kernel.sealed_codes import DEV_PRIVATE_KEY
from services.notify.settings import NotifySettings
from services.routing.settings import RoutingSettings
from tests.integration import fuzzing
from tests.integration.log_scan import (
    CACHE,
    IN_PROCESS_LOGS,
    SESSION_STARTED,
    codes_in,
    leaks,
    log_lines,
    service_log_files,
)
from tests.integration.simulators import mailbox, telephony_url  # noqa: F401 (session fixtures)
from tests.integration.support import kafka_passwords
from tests.smoke import test_installed_package as smoke


def configured_secrets() -> set[str]:
    """Every secret value the suite's services ran with: the settings' development defaults of the
    fields production requires as secrets, the tests' own keys, the Kafka users' passwords."""
    values = {DEV_PRIVATE_KEY, fuzzing.SIGNING_KEY, fuzzing.WEBHOOK_SECRET, smoke.SIGNING_KEY}
    for settings in (IntakeSettings, RoutingSettings, CarrierSettings, NotifySettings):
        for name in settings.production_secrets:
            default = settings.model_fields[name].default
            if isinstance(default, str):
                values.add(default)
    values |= set(kafka_passwords().values())
    return values


def received_codes(mailbox, telephony_url: str) -> set[str]:  # noqa: F811
    """The one-time codes people were sent during the run, as the mailbox and the telephony
    simulators received them."""
    emails = httpx.get(f"{mailbox.url}/messages", timeout=10).json()
    texts = [str(message) for message in emails]
    texts += [str(sms) for sms in httpx.get(f"{telephony_url}/received", timeout=10).json().get("messages", [])]
    return codes_in(texts)


def test_no_log_line_of_any_service_holds_a_token_a_code_or_a_secret(mailbox, telephony_url, tmp_path_factory):  # noqa: F811
    # Only this run's files: a developer's cache holds earlier runs' logs.
    files = service_log_files(
        tmp_path_factory.getbasetemp(), CACHE / "fault-suite-logs", IN_PROCESS_LOGS, since=SESSION_STARTED - 5
    )
    secrets = configured_secrets()
    codes = received_codes(mailbox, telephony_url)

    lines = list(log_lines(files))  # read once: scanned, then counted
    found = list(leaks(lines, secrets, codes))

    assert files, "no service log was written: the scan would prove nothing"
    print(
        f"\nlog scan: {len(files)} files, {len(lines)} lines, "
        f"{len(secrets)} secret values, {len(codes)} one-time codes sent"
    )
    assert not found, "secrets in the logs:\n" + "\n".join(map(str, found[:20]))
