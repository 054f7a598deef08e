"""The log scan that runs after the whole suite finds what it is there to find (log_scan.py)."""

from __future__ import annotations

from tests.integration.log_scan import codes_in, leaks

SECRET = "s3cr3t-kafka-password-0123"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXN0LTEifQ.c2lnbmF0dXJlLXZhbHVl"


def found(*lines: str, codes=("482913",)) -> list[str]:
    return [leak.what for leak in leaks([("a.log", line) for line in lines], {SECRET, "short"}, codes)]


def test_a_code_people_were_sent_is_found_in_any_sentence_but_not_inside_a_longer_number_or_a_time():
    assert found("sending SMS: Your one-time code is 482913.") == ["one-time code 482913"]
    assert found('{"msg": "verify", "value": 482913}') == ["one-time code 482913"]
    assert found("offset 14829130", "at 12:00:01.482913", "took 0,482913 s") == []


def test_a_configured_secret_is_found_whatever_its_name_and_a_redacted_line_is_clean():
    assert found(f"connecting with {SECRET}") == ["a configured secret (s3c…)"]
    assert found("GET /case?token=[redacted] 200", "Authorization: Bearer [redacted]") == []
    assert found("short words are not secrets") == []


def test_raw_credentials_by_shape_a_jwt_a_query_token_a_bearer_value():
    assert found(f"Traceback: bad link {JWT}") == ["a JWT"]
    assert found("GET /closure?token=abcdef123 HTTP/1.1") == ["a token or code in a query string"]
    assert found("headers {'authorization': 'Bearer abcdefgh12345'}") == ["an Authorization value"]


def test_codes_are_read_from_the_messages_people_received():
    assert codes_in(["Your one-time code is 123456. It works once", "no code here 654321"]) == {"123456"}
