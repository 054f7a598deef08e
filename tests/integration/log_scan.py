"""The log scan after the whole suite (issue 16): no token, one-time code or secret value in any
line any service wrote, whoever wrote it and however.

The JSON formatter redacts every line it formats (services/kernel/redaction.py), so scanning its
output for the shapes it redacts proves little on its own. What this scan adds: it reads what
was REALLY written — the service processes' whole output (lines written before logging was set
up, a traceback, librdkafka's own stderr) and the in-process apps' records as the formatter
wrote them — and looks for VALUES, not names: every secret the suite's services were configured
with (signing keys, webhook secrets, the carriers' credentials, the Kafka users' passwords, the
development code-opening key) and every one-time code the simulators received, whatever field
or sentence holds it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("COMPLAINTS_CACHE", ROOT / ".cache"))
#: Where tests/conftest.py writes the in-process apps' log records, formatted as a service formats them.
IN_PROCESS_LOGS = CACHE / "test-logs"
#: Imported by tests/conftest.py as the run starts: files older than this are earlier runs'.
SESSION_STARTED = time.time()

#: Shapes a credential has, in a line that never went through the formatter.
_SHAPES = (
    ("a JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a token or code in a query string", re.compile(r"[?&](?:token|code)=(?!\[redacted\]|%5Bredacted)[^&\s\"'#]+")),
    ("an Authorization value", re.compile(r"\b(?:Bearer|Basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}")),
)
#: How the messages people receive give a one-time code (notify's verification_code templates).
_CODE_IN_MESSAGE = re.compile(r"one-time code is\D{0,40}?(\d{6})")


@dataclass(frozen=True)
class Leak:
    where: str
    what: str
    line: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.line[:300]}"


def codes_in(messages: Iterable[str]) -> set[str]:
    """The one-time codes in the texts of emails and SMS as people received them."""
    return {code for text in messages for code in _CODE_IN_MESSAGE.findall(text)}


def leaks(lines: Iterable[tuple[str, str]], secrets: Iterable[str], codes: Iterable[str]) -> Iterator[Leak]:
    """Every ``(where, line)`` holding a secret value, a one-time code or a credential's shape.
    A code counts only as a number of its own (not inside a longer number or a fraction of a
    second such as ``12:00:01.123456``)."""
    values = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)
    code_pattern = re.compile(r"(?<![\d.:,])(" + "|".join(sorted(set(codes))) + r")(?![\d])") if codes else None
    for where, line in lines:
        for value in values:
            if value in line:
                yield Leak(where, f"a configured secret ({value[:3]}…)", line)
        if code_pattern is not None and (found := code_pattern.search(line)):
            yield Leak(where, f"one-time code {found.group(1)}", line)
        for what, shape in _SHAPES:
            if shape.search(line):
                yield Leak(where, what, line)


def log_lines(files: Iterable[Path]) -> Iterator[tuple[str, str]]:
    for path in files:
        with path.open(errors="replace") as text:
            for number, line in enumerate(text, 1):
                yield f"{path}:{number}", line.rstrip("\n")


def service_log_files(*folders: Path, since: float) -> list[Path]:
    """The ``*.log`` / ``*.jsonl`` files under ``folders`` written since ``since`` (a timestamp),
    leaving out the simulators' (the outside world's own records of what it received) and the
    broker's and store's."""
    found = []
    for folder in folders:
        if not folder.exists():
            continue
        for path in folder.rglob("*"):
            if (
                path.suffix in (".log", ".jsonl")
                and path.is_file()
                and path.stat().st_mtime >= since
                and not path.name.startswith(("kafka", "ferretdb"))  # the broker's and the store's own
                and not any(part.startswith("simulators") for part in path.parts)
            ):
                found.append(path)
    return sorted(found)
