"""Opt-in count of the store commands a service process sends, for the benchmark (bench/README.md).

``COMPLAINTS_COUNT_STORE_COMMANDS=<folder>``: the process counts every command its store client
starts (PyMongo command monitoring), by command and collection (``"find pending"``), and rewrites
``<folder>/<service>.<pid>.json`` every second and at exit. Unset (the default): nothing at all.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pymongo import monitoring

ENV = "COMPLAINTS_COUNT_STORE_COMMANDS"


def command_key(name: str, command: Mapping[str, Any]) -> str:
    """``"find pending"``: the command and the collection it names (most commands name one as the
    value of their own key), so that a count says which code sent it."""
    collection = command.get(name) if hasattr(command, "get") else None
    return f"{name} {collection}" if isinstance(collection, str) else name


class CommandCounter(monitoring.CommandListener):
    """Counts the store commands a process's clients send, by command and collection (``path``: where
    ``dump`` writes them; the benchmarks read ``counts`` in process and need none)."""

    def __init__(self, path: str = "") -> None:
        self.path = path
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[command_key(event.command_name, event.command)] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def dump(self) -> None:
        try:
            counts = dict(self.counts)
        except RuntimeError:  # changed size while copied (the event loop's thread counts): next time
            return
        with open(f"{self.path}.tmp", "w") as out:
            json.dump(counts, out)
        os.replace(f"{self.path}.tmp", self.path)  # a reader never sees half a file


def listeners(service_name: str) -> list[monitoring.CommandListener]:
    """The store client's listeners: a counter if the environment asks for one, else none."""
    if not (folder := os.environ.get(ENV)):
        return []
    os.makedirs(folder, exist_ok=True)
    counter = CommandCounter(os.path.join(folder, f"{service_name}.{os.getpid()}.json"))

    def flush_every_second() -> None:  # so that a kill -9 loses at most a second of counts
        while True:
            time.sleep(1)
            counter.dump()

    threading.Thread(target=flush_every_second, daemon=True, name="store-command-count").start()
    atexit.register(counter.dump)
    return [counter]
