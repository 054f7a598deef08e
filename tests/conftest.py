"""What every test run has: a watchdog that says where a test hangs.

A test that never ends once held CI until its 90-minute limit and left nothing to read. Now
pytest-timeout fails a test after ``timeout`` (pyproject.toml) and the run goes on; a test still
running after WATCHDOG_S prints, first, every thread's stack (faulthandler, from C: it works even
when the event loop is blocked in a call that never returns) and every asyncio task's stack of the
session's loop, which is where an async test waits.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import logging
import os
import sys
import threading
from collections import Counter

import pytest

from services.kernel.telemetry import JsonLogFormatter
from tests.integration.log_scan import IN_PROCESS_LOGS

WATCHDOG_S = 300.0


@pytest.fixture(autouse=True)
def _watchdog(request):
    """Dump stacks when a test runs longer than WATCHDOG_S, or than half the longer timeout it is
    marked with (it is meant to run long): not a failure, the timeout decides."""
    marked = request.node.get_closest_marker("timeout")
    after_s = max(WATCHDOG_S, float(marked.args[0]) / 2) if marked and marked.args else WATCHDOG_S
    faulthandler.dump_traceback_later(after_s, exit=False, file=sys.__stderr__)
    timer = threading.Timer(after_s + 1, _dump_tasks, args=(request.node.nodeid, after_s))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        faulthandler.cancel_dump_traceback_later()


def _dump_tasks(nodeid: str, after_s: float) -> None:
    out = sys.__stderr__
    print(f"\n--- {nodeid} still running after {after_s:.0f} s: its asyncio tasks ---", file=out)
    # pytest-asyncio does not say which loop runs the test from another thread; the running ones are
    # found among all objects (once, when a test hangs: the cost does not matter then).
    try:
        loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]
        tasks = [task for loop in loops for task in asyncio.all_tasks(loop)]
    except Exception as exc:  # noqa: BLE001 - diagnostics only, never raise from the watchdog
        print(f"(cannot list the tasks: {exc})", file=out)
        return
    # Each distinct stack once, with how many tasks wait there: thousands of customers queued on
    # one semaphore are one line, not thousands of pages.
    stacks: Counter[str] = Counter()
    for task in tasks:
        try:
            text = io.StringIO()
            task.print_stack(limit=12, file=text)
            stacks[text.getvalue().split("\n", 1)[-1]] += 1  # without its "Stack for <Task…>" line
        except Exception as exc:  # noqa: BLE001 - a task may finish while we read it
            print(f"({task.get_name()}: {exc})", file=out)
    for stack, count in stacks.most_common():
        print(f"{count} task(s) at:\n{stack}", file=out)
    out.flush()


def pytest_configure(config) -> None:
    """The apps a test runs in this process log as a service does, to a file the log scan reads
    after the whole suite (tests/integration/test_no_secret_in_any_log.py): every record at INFO
    and above (httpx's request lines, uvicorn's access lines), through the services' formatter."""
    if hasattr(config, "workerinput"):
        return
    IN_PROCESS_LOGS.mkdir(parents=True, exist_ok=True)
    path = IN_PROCESS_LOGS / f"in-process-{os.getpid()}.jsonl"
    path.write_text("")
    # Appending: uvicorn's dictConfig closes every handler when an app starts in a thread, and a
    # closed handler opened for writing ("w") drops records instead of opening its file again.
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(JsonLogFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """The log scan reads what the whole run wrote: it runs last."""
    last = [item for item in items if item.path.name == "test_no_secret_in_any_log.py"]
    for item in last:
        items.remove(item)
    items.extend(last)
