"""No log line holds a token, a one-time code, a secret or an Authorization value (issue 16, item 5)."""

import json
import logging

import pytest

from services.kernel.redaction import MASK, redact
from services.kernel.telemetry import JsonLogFormatter

JWT = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImRldiJ9.eyJzdWIiOiJjLTIwMjYtMDAwMDQyIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


@pytest.mark.parametrize(
    "line, secret",
    [
        (f'127.0.0.1:5000 - "GET /complaints/c-1?token={JWT} HTTP/1.1" 200', JWT),
        (
            '127.0.0.1:5000 - "GET /closure?answer=yes&token=opaque-closure-token-123 HTTP/1.1" 303',
            "opaque-closure-token-123",
        ),
        ("HTTP Request: GET http://127.0.0.1:8001/api/cases?code=481516&x=1", "481516"),
        ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
        ("authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ('{"authorization": "Bearer zzz-token-value"}', "zzz-token-value"),
        ('failed: {\\"password\\": \\"hunter2-long\\", \\"n\\": 1}', "hunter2-long"),
        ('{"verification_id": "ver-1", "code": "481516"}', "481516"),
        ("sasl.password=s3cr3t-value,bootstrap.servers=127.0.0.1:9092", "s3cr3t-value"),
        ("INBOUND_WEBHOOK_SECRET=dev-only-inbound-webhook-secret", "dev-only-inbound-webhook-secret"),
        ("store at mongodb://intake:pa55word@db.internal:27017/", "pa55word"),
        ("reply to case+c-2026-000042.7f3a9b2c1d@complaints.example.com", "c-2026-000042.7f3a9b2c1d"),
        (f"token {JWT} refused", JWT),
    ],
)
def test_a_credential_in_a_log_line_is_redacted_whatever_its_shape(line, secret):
    redacted = redact(line)

    assert secret not in redacted and MASK in redacted


def test_what_operators_need_stays_readable():
    line = (
        '{"message": "message dead-lettered", "topic": "complaints.intake.v1", "offset": 481516, '
        '"code": "code_refused", "status": 422, "path": "/api/complaints?category=late"}'
    )

    assert redact(line) == line


def test_the_json_formatter_redacts_every_line_whoever_wrote_it():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/complaints/c-1?token={JWT}", "1.1", 200),
        None,
    )
    record.fields = {"link": f"https://help.example.com/closure?token={JWT}"}

    out = JsonLogFormatter().format(record)

    assert JWT not in out and json.loads(out)["message"].endswith(f'/complaints/c-1?token={MASK} HTTP/1.1" 200')
