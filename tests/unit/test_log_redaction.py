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


def test_every_rule_needs_a_word_of_the_quick_check_so_a_line_without_one_is_left_alone():
    """``redact`` skips its rules for a line without any of ``_TRIGGERS``: no rule may match one.
    Each rule's pattern, with its literal words, must contain a trigger (else it could match a
    line the quick check lets through)."""
    from services.kernel.redaction import _FIELDS, _PARAMS, _RULES, _TRIGGERS

    line = '127.0.0.1:5000 - "POST /api/complaints HTTP/1.1" 202'
    assert redact(line) is line
    names = [name for group in (_PARAMS, _FIELDS) for name in group.removeprefix("(?:").removesuffix(")").split("|")]
    for name in names:  # a parameter's or field's name is all a rule knows of it: each holds a trigger
        assert any(trigger in name.lower() for trigger in _TRIGGERS), f"no trigger in {name}"
    for pattern, _ in _RULES:
        assert any(trigger in pattern.pattern.lower() for trigger in _TRIGGERS), f"no trigger in {pattern.pattern}"


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
