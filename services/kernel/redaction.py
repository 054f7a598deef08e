"""What no log line may hold: tokens, one-time codes, secrets, credentials (issue 16, item 5).

One function, applied by the JSON log formatter to every line of every service (our own lines,
uvicorn's access lines with their query strings, httpx's request lines, librdkafka's), so that no
route, logger or future log call has to remember it. It works on the text, by shape: a value is
redacted because of the name it goes by (``?token=``, ``"password": …``, ``Authorization``) or
the form it has (a JWT, credentials in a URL, a per-case reply address), never because a caller
marked it.
"""

from __future__ import annotations

import re

MASK = "[redacted]"

#: Query or form parameters whose value is a credential (case and closure links carry ``token``).
_PARAMS = r"(?:token|access_token|id_token|refresh_token|code|secret|password|passwd|api_key|apikey|key|signature|sig)"
#: JSON fields (also inside a JSON-escaped message) whose value is a credential.
_FIELDS = (
    r"(?:authorization|password|passwd|secret|client_secret|auth_token|token|access_token|filing_token|"
    r"signing_key|code_opening_keys|sasl\.password|sasl_password|api_key|cookie|set-cookie)"
)

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer/Basic <credential>, wherever it shows (a header dump, an error text)
    (re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{4,}", re.I), rf"\1\2{MASK}"),
    # ?token=…&code=… in a path (uvicorn's access line, httpx's request line, a link in a message)
    (re.compile(rf"([?&;]{_PARAMS}=)[^&\s\"'#;\\]+", re.I), rf"\1{MASK}"),
    # "password": "…" in JSON, also JSON-escaped inside a message (\"password\": \"…\")
    (re.compile(rf"(\\?\"{_FIELDS}\\?\"\s*:\s*\\?\")(?:[^\"\\]|\\.)*?(\\?\")", re.I), rf"\1{MASK}\2"),
    # a six-digit one-time code as a JSON field ("code" is also the problems' words: only digits)
    (re.compile(r"(\\?\"code\\?\"\s*:\s*\\?\")\d{4,8}(\\?\")", re.I), rf"\1{MASK}\2"),
    # key=value forms (librdkafka's configuration, a repr, an environment): sasl.password=…, X_SECRET=…
    (
        re.compile(r"\b([\w.]*(?:password|secret|token))(\s*[=:]\s*)(?!\s*\\?\"|\[redacted\])[^\s,;&'\"}\]\\]+", re.I),
        rf"\1\2{MASK}",
    ),
    # any JWT (case links, closure links, agents' and filing tokens), whatever it is called
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), MASK),
    # credentials in a URL: mongodb://user:password@host, https://user:password@host
    (re.compile(r"(//)[^/@\s:\"]+:[^/@\s\"]+@"), rf"\1{MASK}@"),
    # the per-case reply address case+<token>@domain: its token is a credential
    (re.compile(r"(case\+)[A-Za-z0-9._=-]{6,}(@)", re.I), rf"\1{MASK}\2"),
)


#: A word or sign every rule above needs (a superset of their triggers, case aside): a line with
#: none of them, as most are (an access line, a consumer's line), is left as it is after one search
#: instead of eight substitutions (the rules were 2 % of intake's CPU in a burst, py-spy).
_TRIGGERS = ("bearer", "basic", "token", "code", "secret", "passw", "key", "sig", "authoriz", "cookie", "eyj", "@")


def redact(text: str) -> str:
    """``text`` with every credential it holds replaced by ``[redacted]``."""
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
