"""The ``complaints`` operator command: inspect a complaint's log, rebuild a projection, handle dead letters.

Every subcommand works on one service's store or topics, chosen by the global options (or the
same environment variables the services read), and reports an unreachable dependency in one line
with exit code 2.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from confluent_kafka import KafkaException
from pydantic import ValidationError
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.json import JSON
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from contracts.envelope import Envelope, Registry
from services.kernel.deadletters import StoredLetter, list_letters, redrive
from services.kernel.eventstore import Commit, EventStore
from services.kernel.projections import Projection, Projector
from services.kernel.runtime import DependencyUnavailable, check_broker, check_store
from services.kernel.settings import KernelSettings

Database = AsyncDatabase[dict[str, Any]]
#: What ``metrics --source`` names: (db, period, by, days) -> the figures answer.
Figures = Callable[[Database, str, str | None, int], Awaitable[dict[str, Any]]]

app = typer.Typer(
    name="complaints",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    help="Operate the complaint platform's services: look into a complaint's event log, rebuild "
    "a read model from the log, list and re-drive dead letters.\n\n"
    "Example: `complaints --service intake inspect c-2026-000042`",
)
dlq_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Dead letters: messages a consumer could not process, kept on `TOPIC.dlq` with the reason in headers.",
)
app.add_typer(dlq_app, name="dlq")


class UsageProblem(Exception):
    """Something the operator asked for that does not exist; the message lists what does."""


# --- output and errors ------------------------------------------------------------------------


def _out() -> Console:
    return Console(highlight=False)


def _fail(message: str, code: int = 2) -> NoReturn:
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(f"error: {message}", style="bold red"))
    raise typer.Exit(code)


def _redacted(url: str) -> str:
    """A connection string fit to print: credentials replaced."""
    return re.sub(r"//[^@/]+@", "//***@", url)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def _dependency_errors(settings: KernelSettings) -> Iterator[None]:
    """Turn an unreachable or failing store or broker into one line naming what and where."""
    try:
        yield
    except DependencyUnavailable as exc:
        _fail(f"cannot reach the {exc.what} at {_redacted(exc.where)}: {exc.why}")
    except PyMongoError as exc:
        _fail(f"the document store (MONGODB_URL) at {_redacted(settings.mongodb_url)} failed: {_first_line(exc)}")
    except KafkaException as exc:
        _fail(f"the Kafka broker (KAFKA_BOOTSTRAP_SERVERS) at {settings.kafka_bootstrap_servers} failed: {exc.args[0]}")


def _client(settings: KernelSettings) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=int(settings.startup_timeout_s * 1000)
    )


def _load(ref: str, what: str) -> Any:
    """The object a ``module:ATTR`` reference names."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise UsageProblem(f"{what} must be given as module:ATTR, got {ref!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UsageProblem(f"cannot import {module_name!r} for the {what}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageProblem(f"module {module_name!r} has no {attr!r} ({what})") from None


# --- global options ---------------------------------------------------------------------------


@app.callback()
def main(
    ctx: typer.Context,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            envvar="SERVICE_NAME",
            show_default=False,
            help="Service whose store to use: selects the database complaints_SERVICE.",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            envvar="MONGODB_DATABASE",
            show_default=False,
            help="Database name, overriding the one --service selects.",
        ),
    ] = None,
    mongodb_url: Annotated[
        str | None,
        typer.Option(
            "--mongodb-url",
            envvar="MONGODB_URL",
            show_default=False,
            help="MongoDB connection string [default: mongodb://127.0.0.1:27017/].",
        ),
    ] = None,
    kafka: Annotated[
        str | None,
        typer.Option(
            "--kafka",
            envvar="KAFKA_BOOTSTRAP_SERVERS",
            show_default=False,
            help="Kafka bootstrap servers [default: 127.0.0.1:9092].",
        ),
    ] = None,
) -> None:
    """Operate the complaint platform's services."""
    # Any: KernelSettings' __init__ also takes pydantic-settings' _-options, which are not all str.
    given: dict[str, Any] = {
        "service_name": service,
        "mongodb_database": database,
        "mongodb_url": mongodb_url,
        "kafka_bootstrap_servers": kafka,
    }
    try:
        ctx.obj = KernelSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        _fail(f"invalid setting {'.'.join(map(str, error['loc']))}: {error['msg']}")


# --- inspect ----------------------------------------------------------------------------------


def _commit_entry(commit: Commit, published: bool) -> dict[str, Any]:
    return {
        "kind": "commit",
        "position": commit.position,
        "stream_id": commit.stream_id,
        "version": commit.version,
        "commit_id": commit.id,
        "recorded_at": commit.recorded_at.isoformat(),
        "published": published,
        "handler": commit.metadata.get("handler"),
        "cause": commit.metadata.get("cause"),
        "events": [e.model_dump(mode="json") for e in commit.events],
    }


def _consumed_entry(doc: dict[str, Any]) -> dict[str, Any]:
    envelope = Envelope.model_validate(doc["envelope"])
    return {
        "kind": "consumed",
        "position": doc["position"],
        "topic": doc.get("topic"),
        "partition": doc.get("partition"),
        "offset": doc.get("offset"),
        "received_at": doc["received_at"].isoformat() if doc.get("received_at") else None,
        "handled": doc.get("handled"),
        "events": [envelope.model_dump(mode="json")],
    }


async def _log_of(settings: KernelSettings, complaint_id: str) -> list[dict[str, Any]]:
    """The complaint's own commits and the consumed events about it, merged by log position."""
    await check_store(settings)
    client = _client(settings)
    try:
        db = client[settings.database_name]
        store = EventStore(db, f"/services/{settings.service_name}", Registry())
        commits = await store.read_stream(complaint_id)
        pending = {d["_id"] async for d in store.pending.find({"kind": "commit"}, {"_id": 1})}
        consumed = await db["inbox"].find({"envelope.subject": complaint_id}).sort("position", ASCENDING).to_list()
    finally:
        await client.close()
    entries = [_commit_entry(c, c.id not in pending) for c in commits] + [_consumed_entry(d) for d in consumed]
    return sorted(entries, key=lambda e: e["position"])


def _entry_label(entry: dict[str, Any]) -> Text:
    if entry["kind"] == "commit":
        return Text.assemble(
            (f"v{entry['version']}", "bold cyan"),
            f"  position {entry['position']}  {entry['recorded_at']}  ",
            ("published", "green") if entry["published"] else ("unpublished", "yellow"),
            f"  handler {entry['handler']}  cause {entry['cause']}",
        )
    return Text.assemble(
        ("consumed", "bold magenta"),
        f"  position {entry['position']}  {entry['received_at']}  "
        f"{entry['topic']}[{entry['partition']}]@{entry['offset']}  ",
        "handled" if entry["handled"] else "recorded only",
    )


def _render_log(complaint_id: str, database: str, entries: list[dict[str, Any]]) -> Tree:
    commits = sum(e["kind"] == "commit" for e in entries)
    tree = Tree(
        Text.assemble(
            (complaint_id, "bold"), f"  {commits} commit(s), {len(entries) - commits} consumed event(s) in {database}"
        )
    )
    for entry in entries:
        node = tree.add(_entry_label(entry))
        for event in entry["events"]:
            leaf = node.add(Text.assemble((event["type"], "bold"), f"  id {event['id']}"))
            leaf.add(
                Text(
                    f"time {event['time']}  correlation {event['correlationid']}  causation {event.get('causationid')}",
                    style="dim",
                )
            )
            leaf.add(JSON.from_data(event["data"], indent=2))
    return tree


@app.command()
def inspect(
    ctx: typer.Context,
    complaint_id: Annotated[str, typer.Argument(help="The complaint (stream) id.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per log entry.")] = False,
) -> None:
    """Show a complaint's event log: its commits in order, and the consumed events about it.

    Each commit shows its version, log position, time, whether it was published, and the handler
    and cause that appended it; each event its type, id, time, correlation id and data. Events
    this service consumed from Kafka (its inbox) whose subject is the complaint are merged in by
    position and marked "consumed". Exit code 1 when the log knows nothing of the complaint.

    Example: `complaints --service intake inspect c-2026-000042 --json | jq .version`
    """
    settings: KernelSettings = ctx.obj
    with _dependency_errors(settings):
        entries = asyncio.run(_log_of(settings, complaint_id))
    if not entries:
        _fail(
            f"no commits or consumed events for complaint {complaint_id!r} in database "
            f"{settings.database_name!r} at {_redacted(settings.mongodb_url)}",
            1,
        )
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry, ensure_ascii=False))
    else:
        _out().print(_render_log(complaint_id, settings.database_name, entries))


# --- rebuild ----------------------------------------------------------------------------------


async def _rebuild(
    settings: KernelSettings, registry: Registry, factories: list[Callable[[Database], Projection]], name: str
) -> tuple[int, float]:
    """Rebuild ``name``; the entries applied and the seconds the rebuild took (from the count of the
    log to the last write: not the start of this process, nor loading the projections' module)."""
    client = _client(settings)
    try:
        db = client[settings.database_name]
        projector = Projector(
            EventStore(db, f"/services/{settings.service_name}", registry), [factory(db) for factory in factories]
        )
        if name not in projector.projections:
            known = ", ".join(sorted(projector.projections)) or "none"
            raise UsageProblem(f"unknown projection {name!r}; known projections: {known}")
        await check_store(settings)
        started = time.perf_counter()
        # A rebuild applies (or skips, for a type the service does not model) every entry of the
        # log once, so the size of the log is the bar's total (as the store estimates it).
        total = await projector.log_size()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task(f"rebuilding {name}", total=total)

            def advance(count: int) -> None:
                progress.advance(task, count)
                done = progress.tasks[task].completed
                if done > total:  # entries appended while rebuilding
                    progress.update(task, total=done)

            applied = await projector.rebuild(name, advance)
        return applied, time.perf_counter() - started
    finally:
        await client.close()


@app.command()
def rebuild(
    ctx: typer.Context,
    projection: Annotated[str, typer.Argument(help="Name of the projection (read model).", show_default=False)],
    projections: Annotated[
        str | None,
        typer.Option(
            "--projections",
            metavar="MODULE:ATTR",
            show_default=False,
            help="List of projection factories (db) -> Projection [default: services.SERVICE.projections:PROJECTIONS].",
        ),
    ] = None,
    registry: Annotated[
        str, typer.Option("--registry", metavar="MODULE:ATTR", help="Registry of the event types to decode.")
    ] = "contracts:registry",
) -> None:
    """Drop one projection and rebuild it from the service's log (own commits and inbox).

    The whole log is applied again in position order, with a progress bar; prints how many log
    entries were applied and how long it took. Stop the service first: its projector, caught
    between applying a batch and marking it, could mark entries whose effect the drop erased.
    Exit code 2 for an unknown projection (the known ones are listed).

    Example: `complaints --service routing rebuild queue_per_skill`
    """
    settings: KernelSettings = ctx.obj
    try:
        try:
            factories = _load(projections or f"services.{settings.service_name}.projections:PROJECTIONS", "projections")
        except UsageProblem as exc:
            hint = "" if projections else "; name the list with --projections MODULE:ATTR"
            raise UsageProblem(f"{exc}{hint}") from None
        event_types = _load(registry, "registry")
        with _dependency_errors(settings):
            applied, seconds = asyncio.run(_rebuild(settings, event_types, list(factories), projection))
    except UsageProblem as exc:
        _fail(str(exc), 2)
    typer.echo(
        f"rebuilt {projection}: {applied} log entries applied in {seconds:.2f}s (database {settings.database_name})"
    )


# --- metrics ------------------------------------------------------------------------------------


async def _figures(
    settings: KernelSettings, compute: Figures, period: str, by: str | None, days: int
) -> dict[str, Any]:
    await check_store(settings)
    client = _client(settings)
    try:
        return await compute(client[settings.database_name], period, by, days)
    finally:
        await client.close()


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if "_rate" in name else str(value)


def _figures_table(answer: dict[str, Any]) -> Table:
    """One row per figure, one column per period (and breakdown value): the figures read down."""
    rows = answer["rows"]
    table = Table(
        title=f"customer-experience figures per {answer['period']}"
        + (f" by {answer['by']}" if answer["by"] else "")
        + f", cases filed since {answer['since']}"
    )
    table.add_column("figure")
    for row in rows:
        table.add_column(row["period"] + (f"\n{row['group']}" if row["group"] is not None else ""), justify="right")
    for name in rows[0]["figures"] if rows else {}:
        values = [row["figures"][name] for row in rows]
        if isinstance(values[0], dict):  # a spread: count and percentiles of seconds
            for part in ("count", "p50", "p90", "p99"):
                table.add_row(f"{name} {part}", *(_cell(part, v[part]) for v in values))
        else:
            table.add_row(name, *(_cell(name, v) for v in values))
    return table


@app.command()
def metrics(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="day or week.")] = "day",
    by: Annotated[
        str | None, typer.Option(help="Break down by category, channel, team or agent.", show_default=False)
    ] = None,
    days: Annotated[int, typer.Option(help="How many days back (UTC, today included) the cases were filed.")] = 28,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer of GET /api/metrics/figures.")] = False,
    source: Annotated[
        str,
        typer.Option("--source", metavar="MODULE:ATTR", help="The coroutine (db, period, by, days) -> figures answer."),
    ] = "services.intake.metrics:figures_in",
) -> None:
    """Print the customer-experience figures, as supervisors see them on /desk/metrics.

    Reads the intake service's metrics read model (`--service intake`, the default here); every
    figure is defined in the README, "Customer-experience metrics".

    Example: `complaints metrics --period week --by team`
    """
    settings: KernelSettings = ctx.obj
    if settings.service_name == "kernel" and settings.mongodb_database is None:
        settings = settings.model_copy(update={"service_name": "intake"})  # the metrics live in intake's store
    try:
        compute = _load(source, "figures")
        with _dependency_errors(settings):
            answer = asyncio.run(_figures(settings, compute, period, by, days))
    except (UsageProblem, ValueError) as exc:
        _fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False))
    else:
        _out().print(_figures_table(answer))


# --- dead letters -----------------------------------------------------------------------------


def _dlq_name(topic: str) -> str:
    return topic if topic.endswith(".dlq") else f"{topic}.dlq"


def _letter_row(letter: StoredLetter) -> dict[str, Any]:
    reason = letter.header("dlq_reason") or ""
    return {
        "partition": letter.partition,
        "offset": letter.offset,
        "key": letter.key.decode(errors="replace") if letter.key is not None else None,
        "ce_type": letter.header("ce_type"),
        "dlq_error_class": letter.header("dlq_error_class"),
        "dlq_reason": (reason.splitlines() or [""])[0],
        "dlq_failed_at": letter.header("dlq_failed_at"),
    }


TopicArgument = Annotated[
    str, typer.Argument(help="The topic, or its dead-letter topic (TOPIC.dlq).", show_default=False)
]


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    topic: TopicArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per letter.")] = False,
) -> None:
    """List the dead letters of a topic: where they are, their type, and why they failed.

    Reads TOPIC.dlq from the start without moving any consumer group.

    Example: `complaints dlq list complaints.intake.v1`
    """
    settings: KernelSettings = ctx.obj
    dlq = _dlq_name(topic)
    with _dependency_errors(settings):
        check_broker(settings)
        rows = [_letter_row(letter) for letter in list_letters(settings, dlq)]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        typer.echo(f"no dead letters on {dlq}")
        return
    table = Table(title=f"{len(rows)} dead letter(s) on {dlq}")
    for column in ("partition", "offset", "key", "ce_type", "dlq_error_class", "dlq_reason", "dlq_failed_at"):
        table.add_column(column, justify="right" if column in ("partition", "offset") else "left")
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row.values()))
    _out().print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    ctx: typer.Context,
    topic: TopicArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Send the dead letters of a topic back to their original topic, each one once.

    Letters already re-driven (by an earlier redrive) are skipped; fix the cause first, or the
    consumer will dead-letter them again.

    Example: `complaints dlq redrive complaints.intake.v1 --yes`
    """
    settings: KernelSettings = ctx.obj
    dlq = _dlq_name(topic)
    with _dependency_errors(settings):
        check_broker(settings)
    if not yes:
        typer.confirm(f"Send every letter of {dlq} not re-driven yet back to its original topic?", abort=True)
    with _dependency_errors(settings):
        try:
            count = asyncio.run(redrive(settings, dlq))
        except RuntimeError as exc:  # a letter the broker did not acknowledge in time
            _fail(f"redrive of {dlq} stopped: {exc}")
    typer.echo(f"re-drove {count} letter(s) from {dlq}")


if __name__ == "__main__":
    app(prog_name="complaints")
