"""`make bench`: every goal of issue 14 in one table, each beside its baseline from the same run.

Starts its own stack (Kafka + FerretDB, ``--name bench``, fresh) and the services on it as
infra/local/services.sh does, measures, prints one table, writes the JSON under ``.cache/bench/``
and stops everything it started. See bench/README.md for each row and docs/performance.md for
today's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import platform as host
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
import uvloop
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import micro
from bench.figures import Row, document, fmt, render, spread, write_json
from bench.platform import SERVICES, AgentsFinishing, Platform, Ports, agents_for, one_at_a_time, run_locust

REPO = Path(__file__).resolve().parent.parent
FULL = "skipped: --full"
#: How long a soak agent holds a case before finishing it: its callback is dialled well before.
SOAK_HOLD_S = 20


class Bench:
    """One run: the options, the rows so far, the raw figures for the JSON."""

    def __init__(self, console: Console, options: dict[str, Any]) -> None:
        self.console, self.options = console, options
        self.rows: list[Row] = []
        self.raw: dict[str, Any] = {}
        self.errors: list[str] = []
        self.phase_times: dict[str, float] = {}
        #: called after each phase: the rows so far survive a run that dies later
        self.checkpoint: Callable[[], None] | None = None

    @contextlib.contextmanager
    def bars(self) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
        columns = (TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:

            def bar(label: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(label, total=total)
                return lambda k: progress.advance(task, k)

            yield bar

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A phase that fails leaves its rows out and says why; the others still run."""
        self.console.print(f"[bold]▶ {name}[/bold]  {datetime.now(UTC):%H:%M:%S} UTC")
        started = time.monotonic()
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - one broken row must not cost the whole table
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            self.console.print(f"[red]{name} failed:[/red] {exc}")
            self.console.print(traceback.format_exc(), markup=False, highlight=False)
        finally:
            self.phase_times[name] = time.monotonic() - started
            if self.checkpoint:
                self.checkpoint()

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)


# --- the kernel alone -----------------------------------------------------------------------------


def kernel_rows(b: Bench, bootstrap: str, mongodb_url: str) -> None:
    o = b.options
    with b.phase("raw Kafka round trip and one persisted hop (bench/roundtrip.py)"), b.bars() as bar:
        hop = on_uvloop(micro.hop_rows(bootstrap, mongodb_url, o["hop_messages"], o["hop_messages"] // 10, 50, bar))
        b.raw["hop"] = hop
        k, r = hop["kernel"], hop["raw"]
        b.add(
            Row(
                "hop_rate",
                "one persisted hop (append → relay → consume → append), 50 in flight",
                k["per_s"],
                "msg/s",
                detail=f"{k['store_commands_per_hop']:.1f} store commands a hop",
                baseline=r["per_s"],
                baseline_label="raw Kafka round trip",
                goal=1000,
                goal_label="≥ 1,000 msg/s",
            ),
            Row(
                "hop_p50",
                "one persisted hop, p50 (one at a time)",
                k["p50_ms"],
                "ms",
                detail=f"p99 {fmt(k['p99_ms'], 'ms')}",
                baseline=r["p50_ms"],
                baseline_label="raw Kafka p50",
                goal=5,
                goal_label="≤ 5 ms",
                higher_is_better=False,
            ),
        )
    with b.phase("eventsourcing library on SQLite"):
        es = micro.eventsourcing_sqlite(o["append_events"], 1000)
        b.raw["eventsourcing"] = es
    with b.phase("append and load"):
        store = on_uvloop(micro.store_rows(mongodb_url, o["append_events"], 50, 1000))
        b.raw["store"] = store
        es = b.raw.get("eventsourcing", {})
        a = store["append"]
        b.add(
            Row(
                "append_new_stream",
                "append one event to a new stream, one at a time",
                a["sequential_per_s"],
                "events/s",
                detail=f"p50 {fmt(a['p50_ms'], 'ms')}",
                baseline=store["raw_insert"]["per_s"],
                baseline_label="raw insert_one",
                baseline_unit="/s",
                goal=0.9,
                goal_label="×0.9 of raw",
            ),
            Row(
                "append_many_streams",
                "append to many streams at once (50 in flight)",
                a["concurrent_per_s"],
                "events/s",
                baseline=es.get("sequential_per_s"),
                baseline_label=f"eventsourcing {es.get('version', '?')} on SQLite, sequential",
                goal=1.0,
                goal_label="×1 of eventsourcing",
            ),
            Row(
                "load_1000",
                "load a 1,000-event stream",
                store["load"]["load_ms"],
                "ms",
                detail=f"median of 5; the first {fmt(store['load']['loads_ms'][0], 'ms')}, keeping its digest",
                baseline=es.get("replay_ms"),
                baseline_label="eventsourcing on SQLite replays it in",
                goal=20,
                goal_label="≤ 20 ms",
                higher_is_better=False,
            ),
        )
    rebuilds: dict[int, dict[str, Any]] = {}
    for events in (o["rebuild_events"], o["rebuild_events_full"]):
        key = f"rebuild_{events // 1000}k"
        label = f"rebuild a projection from {events:,} events (complaints rebuild)"
        if events == o["rebuild_events_full"] and not o["full"]:
            b.add(Row(key, label, skipped=FULL, goal_label="×0.5 of the raw drain"))
            continue
        with b.phase(f"rebuild from {events:,} events"), b.bars() as bar:
            limit = o["rebuild_timeout_s"] if o["full"] else o["rebuild_limit_s"]
            r = on_uvloop(micro.rebuild_row(mongodb_url, events, limit, bar))
            rebuilds[events] = r
            b.raw[key] = r
            rebuilt = r["rebuild"]
            took = (
                f"stopped after {fmt(rebuilt['seconds'], 's')}: {rebuilt['entries']:,} of {events:,} applied "
                "(--full: all)"
                if rebuilt.get("stopped")
                else fmt(rebuilt["seconds"], "s")
            )
            b.add(
                Row(
                    key,
                    label,
                    rebuilt["per_s"],
                    "events/s",
                    detail=took,
                    baseline=r["drain"]["per_s"],
                    baseline_label="raw cursor drain",
                    baseline_unit="docs/s",
                    goal=0.5,
                    goal_label="×0.5 of the raw drain",
                )
            )
    small, large = rebuilds.get(o["rebuild_events"]), rebuilds.get(o["rebuild_events_full"])
    label = f"rebuild linear: rate at {o['rebuild_events_full']:,} vs {o['rebuild_events']:,} events"
    if small and large:
        b.add(
            Row(
                "rebuild_linear",
                label,
                large["rebuild"]["per_s"],
                "events/s",
                baseline=small["rebuild"]["per_s"],
                baseline_label=f"rate at {o['rebuild_events']:,}",
                goal=0.8,
                goal_max=1.2,
                goal_label="×0.8–1.2",
            )
        )
    else:
        b.add(Row("rebuild_linear", label, skipped=FULL, goal_label="×0.8–1.2"))


# --- the services ---------------------------------------------------------------------------------


def services_rows(b: Bench, p: Platform) -> None:
    o = b.options
    low_p99 = math.nan
    with b.phase(f"low load: {o['low_load']} complaints one at a time"), b.bars() as bar:
        p.add_agents(agents_for(o["low_load"]), "low")
        p.forget_calls()
        advance = bar("one at a time", o["low_load"])
        done = one_at_a_time(p, o["low_load"], "+155510", advance=lambda: advance(1))
        latencies = [d["click_to_call_ms"] for d in done if d["click_to_call_ms"] is not None and not d.get("refused")]
        refused = sum(1 for d in done if d.get("refused"))
        s = spread(latencies)
        low_p99 = s["p99"]
        hop = b.raw.get("hop", {}).get("raw", {})
        insert = b.raw.get("store", {}).get("raw_insert", {})
        baseline = 3 * (hop.get("p99_ms", math.nan) + insert.get("p99_ms", math.nan)) + 10
        b.raw["low_load"] = {"click_to_call_ms": s, "dialled": len(latencies), "sent": len(done), "refused": refused}
        b.add(
            Row(
                "low_load_p99",
                f"low load, {o['low_load']} one at a time: click → call p99",
                s["p99"],
                "ms",
                detail=f"p50 {fmt(s['p50'])} / p95 {fmt(s['p95'])}; {len(latencies)}/{len(done)} dialled"
                + (f", {refused} refused" if refused else ""),
                baseline=baseline,
                baseline_label="3×(raw Kafka p99 + raw insert p99)+10 ms =",
                goal=150,
                ratio_goal=1,
                goal_label="≤ 150 ms and ≤ ×1 of baseline",
                higher_is_better=False,
            )
        )

    one_rate = math.nan
    with b.phase(f"burst: {o['complaints']} complaints from {o['clients']} clients (Locust)"), b.bars() as bar:
        # The services' polling alone, before the agents are registered: their registration
        # keeps every service busy for a while (the roster's events reach all of them), which is
        # neither idle nor the burst's work (a rate taken right after it read 69/s, idle is ~15/s).
        idle = p.idle_command_rate()
        p.add_agents(agents_for(o["complaints"]), "burst")
        p.store_commands_when_quiet(idle)
        p.forget_calls()
        before = p.store_commands()
        burst = locust_burst(p, bar, "burst", "+155520", o["complaints"], o["clients"])
        f = burst.figures()
        after = p.store_commands_when_quiet(idle)
        f["store_commands_idle_per_s"] = idle
        b.raw["burst"] = f
        one_rate = f["dialled_per_s"]
        c = f["click_to_call_ms"]
        b.add(
            Row(
                "burst_rate",
                f'burst of {o["complaints"]:,} "call me" from {o["clients"]} clients: rate reaching dial-out',
                f["dialled_per_s"],
                "complaints/s",
                detail=f"{f['dialled']}/{f['accepted']} dialled, {f['lost']} lost, {f['dialled_twice']} twice; "
                f"intake accepted {fmt(f['accepted_per_s'])}/s"
                + (f", refused {f['shed']} with Retry-After (queue too long: ADR 0051)" if f["shed"] else ""),
                goal=50,
                goal_label="≥ 50/s, none lost",
            ),
            Row(
                "burst_p99",
                "same burst: click → call p99",
                c["p99"] / 1000,
                "s",
                detail=f"p50 {fmt(c['p50'] / 1000, 's')} / p95 {fmt(c['p95'] / 1000, 's')}",
                baseline=low_p99 / 1000,
                baseline_label="low-load p99",
                goal=2,
                goal_label="≤ 2 s",
                higher_is_better=False,
            ),
        )
        per_service = {
            s: {k: (after[s][k] - before[s].get(k, 0)) / max(1, f["accepted"]) for k in after[s]} for s in SERVICES
        }
        totals = {s: sum(v.values()) for s, v in per_service.items()}
        b.raw["store_commands_per_complaint"] = per_service
        b.add(
            Row(
                "store_commands",
                "store commands per complaint (PyMongo command monitoring, the burst "
                "until the services are idle again)",
                sum(totals.values()),
                "",
                detail=", ".join(f"{s} {fmt(v)}" for s, v in totals.items())
                + f"; idle polling {fmt(idle)}/s in all, included",
                goal=30,
                goal_label="≤ 30",
                higher_is_better=False,
            )
        )

    with b.phase(f"two instances of every service: {o['scale_complaints']} complaints"), b.bars() as bar:
        p.start_second_instances()
        p.add_agents(agents_for(o["scale_complaints"] + o["kill_complaints"]), "scale")
        p.forget_calls()
        urls = [p.ports.url("intake"), p.ports.url("intake", 2)]
        two = locust_burst(p, bar, "two-instances", "+155530", o["scale_complaints"], o["clients"], urls)
        f2 = two.figures()
        b.raw["two_instances"] = f2
        b.add(
            Row(
                "two_instances",
                "two instances of every service vs one: rate reaching dial-out",
                f2["dialled_per_s"],
                "complaints/s",
                detail=f"{f2['dialled']}/{f2['accepted']} dialled, {f2['lost']} lost, {f2['dialled_twice']} twice",
                baseline=one_rate,
                baseline_label="one instance (the burst)",
                goal=1.6,
                goal_label="×1.6 of one",
            )
        )

        p.forget_calls()
        killed: dict[str, Any] = {}
        victim = p.lease_holder("routing") or p.pid("routing")

        def kill_at_a_third(sent: int) -> None:
            if not killed and sent >= o["kill_complaints"] // 3:
                killed["at"], killed["pid"], killed["sent"] = p.kill_9(victim), victim, sent
                killed["restarted"] = victim == p.pid("routing")

        # Paced below what two instances just carried: flat out, complaints queue faster than they
        # are dialled (intake accepts about twice the chain's rate), and the last in-flight one waits
        # its turn behind that backlog whether or not anything was killed. At 0.8 of the rate the
        # queue stays short, so the figure is the pause the kill makes (session 11: flat out, first
        # dial-out 2.8 s after the kill, the last of 125 in flight 11.2 s).
        kill_rate = round(0.8 * f2["dialled_per_s"], 1) if f2["dialled_per_s"] > 0 else 0.0
        crash = locust_burst(
            p,
            bar,
            "kill-routing",
            "+155540",
            o["kill_complaints"],
            o["clients"],
            urls,
            rate=kill_rate,
            during=kill_at_a_third,
        )
        fk = crash.figures()
        at = killed.get("at", math.nan)
        in_flight = [
            r
            for r in crash.accepted
            if r["clicked"] < at and (r["phone"] not in crash.calls or crash.calls[r["phone"]][0] > at)
        ]
        late = [crash.calls[r["phone"]][0] - at for r in in_flight if r["phone"] in crash.calls]
        # The pause the kill made, apart from the backlog: with complaints in flight the last of
        # them waits its turn behind the others however soon the survivors take over.
        after = sorted(times[0] for times in crash.calls.values() if times[0] > at)
        pauses = [later - earlier for earlier, later in zip([at, *after], after, strict=False)]
        fk.update(
            killed_pid=killed.get("pid"),
            rate=kill_rate,
            in_flight=len(in_flight),
            in_flight_dialled=len(late),
            seconds_to_dial_in_flight=max(late) if late else math.nan,
            first_dial_after_kill_s=after[0] - at if after else math.nan,
            longest_pause_after_kill_s=max(pauses) if pauses else math.nan,
        )
        b.raw["kill_routing"] = fk
        b.add(
            Row(
                "kill_routing",
                "two instances, kill -9 of the routing instance holding the lease mid-burst "
                "(0.8 × their rate): in-flight complaints dialled within",
                fk["seconds_to_dial_in_flight"],
                "s after the kill",
                detail=f"{fk['dialled']}/{fk['accepted']} dialled "
                f"{f'at {fmt(kill_rate)}/s' if kill_rate else 'flat out'}, "
                f"{fk['dialled_twice']} twice, {fk['lost']} lost; "
                f"{len(late)}/{len(in_flight)} in flight dialled; first dial-out "
                f"{fmt(fk['first_dial_after_kill_s'])} s after the kill, longest pause "
                f"{fmt(fk['longest_pause_after_kill_s'])} s",
                goal=3,
                goal_label="≤ 3 s, each dialled once",
                higher_is_better=False,
            )
        )
    p.stop_second_instances()
    p.start()  # the killed routing again, if it was the first instance (services.sh skips what runs)

    if not (o["full"] or o["overload"]):
        b.add(
            Row(
                "overload",
                "overload: 2× the sustainable rate for 60 s, p99 back to normal after",
                skipped="skipped: --full (or --overload)",
                goal_label="≤ 30 s, none lost, 429/503 + Retry-After",
            )
        )
    else:
        with b.phase("overload: twice the sustainable rate for 60 s"), b.bars() as bar:
            overload_row(b, p, bar, one_rate, low_p99)

    minutes = o["soak_minutes_full"] if o["full"] else o["soak_minutes"]
    with b.phase(f"soak: {minutes} min at the sustainable rate"), b.bars() as bar:
        rate = max(1.0, 0.8 * (one_rate if one_rate == one_rate else 5))
        # Places for what is in hand at once (each case held about SOAK_HOLD_S before its agent
        # finishes it), with room to spare, not one per complaint of the soak.
        p.add_agents(agents_for(int(rate * (SOAK_HOLD_S + 20))), "soak")
        p.forget_calls()
        start, halfway = p.rss_mb(), {}

        def at_half_time(sent: int) -> None:
            # The second half's growth apart: caches bounded by count (HotStates' 4,096 streams)
            # fill during the first minutes, a leak goes on growing after them.
            if not halfway and sent >= rate * minutes * 30:
                halfway.update(p.rss_mb())

        with AgentsFinishing(p.ports.url("routing"), datetime.now(UTC), hold_s=SOAK_HOLD_S) as finishing:
            soak = locust_burst(
                p,
                bar,
                "soak",
                "+155560",
                0,
                min(o["clients"], 20),
                rate=rate,
                run_time_s=minutes * 60,
                during=at_half_time,
            )
        end = p.rss_mb()
        fs = soak.figures()
        growth = {s: (end[s] - start[s]) / start[s] * 100 for s in start if s in end}
        second_half = {s: (end[s] - halfway[s]) / halfway[s] * 100 for s in halfway if s in end}
        fs.update(
            rss_start_mb=start,
            rss_halfway_mb=halfway,
            rss_end_mb=end,
            rate=rate,
            minutes=minutes,
            resolved=len(finishing.resolved),
            resolutions_refused=dict(finishing.refused),
        )
        b.raw["soak"] = fs
        b.add(
            Row(
                "soak_rss",
                f"soak {minutes} min at {fmt(rate)}/s: RSS growth, largest of the services",
                max(growth.values()) if growth else math.nan,
                "%",
                detail="; ".join(f"{s} {start[s]:.0f}→{end[s]:.0f} MB" for s in start if s in end)
                + (f"; second half {max(second_half.values()):+.1f} % at most" if second_half else "")
                + f"; {fs['dialled']}/{fs['accepted']} dialled, {fs['resolved']} resolved by their agents"
                + (f" (refused: {fs['resolutions_refused']})" if fs["resolutions_refused"] else ""),
                goal=10,
                goal_label="flat (≤ 10 %) over 10 min",
                higher_is_better=False,
            )
        )


def locust_burst(
    p: Platform,
    bar,
    label: str,
    prefix: str,
    total: int,
    clients: int,
    urls: list[str] | None = None,
    rate: float = 0.0,
    run_time_s: float = 1800,
    during=None,
):
    shown = {"done": 0}
    advance = bar(f"{label}: dialled", total or 1)

    def progress(dialled: int, expected: int) -> None:
        if dialled > shown["done"]:
            advance(dialled - shown["done"])
            shown["done"] = dialled

    return run_locust(
        p,
        label,
        prefix,
        total,
        clients,
        rate=rate,
        run_time_s=run_time_s,
        intake_urls=urls,
        during=during,
        progress=progress,
    )


def overload_row(b: Bench, p: Platform, bar, sustainable: float, low_p99: float) -> None:
    rate = 2 * (sustainable if sustainable == sustainable else 5)
    p.add_agents(agents_for(int(rate * 60 * 1.1) + 60), "overload")
    p.forget_calls()
    burst = locust_burst(p, bar, "overload", "+155550", 0, b.options["clients"], rate=rate, run_time_s=60)
    ended = burst.ended
    normal = max(2 * low_p99, low_p99 + 50) if low_p99 == low_p99 else 500

    def back_to_normal(latencies: list[float]) -> bool:
        return len(latencies) >= 5 and all(x <= normal for x in latencies[-5:])

    advance = bar("overload: probes after", 200)
    limit = b.options["recovery_limit_s"]
    probes = one_at_a_time(
        p,
        200,
        "+155551",
        advance=lambda: advance(1),
        stop_when=lambda latencies: back_to_normal(latencies) or time.time() - ended > limit,
    )
    recovered = [x for x in probes if x["click_to_call_ms"] is not None]
    recovery = (
        (recovered[-5]["clicked"] - ended) if back_to_normal([x["click_to_call_ms"] for x in recovered]) else math.nan
    )
    f = burst.figures()
    refused = sum(1 for x in probes if x.get("refused"))
    f.update(rate=rate, recovery_s=recovery, normal_ms=normal, probes=len(probes), refused_probes=refused)
    b.raw["overload"] = f
    b.add(
        Row(
            "overload",
            f"overload: {fmt(rate)}/s (2× sustainable) for 60 s: click → call p99 back to normal "
            f"(≤ {fmt(normal, 'ms')}) after",
            recovery,
            "s",
            detail=f"{f['dialled']}/{f['accepted']} dialled, {f['lost']} lost; {f['shed']} shed "
            f"({f['shed_with_retry_after']} with Retry-After), {f['timeouts_or_errors']} timeouts/errors; "
            f"{refused} of {len(probes)} probes after refused",
            goal=30,
            goal_label="≤ 30 s, none lost, 429/503 + Retry-After",
            higher_is_better=False,
        )
    )


# --- the run --------------------------------------------------------------------------------------


T = TypeVar("T")


def on_uvloop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a kernel row on the event loop the services run on (uvloop: kernel/startup.py, ADR 0046);
    its baselines run in the same loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def stack(command: str, name: str, kafka_port: int, mongo_port: int, cache: Path, *extra: str) -> None:
    subprocess.run(
        [
            str(REPO / "infra/local/stack.sh"),
            command,
            "--name",
            name,
            "--kafka-port",
            str(kafka_port),
            "--mongo-port",
            str(mongo_port),
            *extra,
        ],
        env={**os.environ, "COMPLAINTS_CACHE": str(cache)},
        check=True,
    )


def machine() -> dict[str, Any]:
    load, model = os.getloadavg(), "?"
    with contextlib.suppress(OSError):
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        )
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "load_average": [round(x, 2) for x in load],
        "python": host.python_version(),
        "kernel": host.release(),
    }


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    complaints: int = typer.Option(1000, min=1, help="Complaints in the burst."),
    clients: int = typer.Option(50, min=1, help="Locust users (clients) in the burst."),
    low_load: int = typer.Option(30, help="Complaints one at a time (low load)."),
    scale_complaints: int = typer.Option(300, min=1, help="Complaints of the two-instance burst."),
    kill_complaints: int = typer.Option(200, min=1, help="Complaints of the burst with a kill -9 of routing."),
    hop_messages: int = typer.Option(500, help="Messages of the hop rows."),
    append_events: int = typer.Option(500, help="Events of the append rows (and of eventsourcing's)."),
    rebuild_events: int = typer.Option(20_000, help="Log size of the rebuild row."),
    rebuild_events_full: int = typer.Option(200_000, help="Log size of the second rebuild row (--full)."),
    rebuild_timeout_s: float = typer.Option(3600, help="Longest a rebuild may take with --full."),
    rebuild_limit_s: float = typer.Option(
        180, help="Without --full, a rebuild is stopped after this long and its rate so far is the figure."
    ),
    soak_minutes: float = typer.Option(1.0, help="Soak length (minutes) without --full."),
    soak_minutes_full: float = typer.Option(10.0, help="Soak length (minutes) with --full."),
    full: bool = typer.Option(False, "--full", help="Also the 200k rebuild, the overload and a 10-minute soak."),
    overload: bool = typer.Option(False, "--overload", help="Run the overload row without --full."),
    recovery_limit_s: float = typer.Option(180, help="Overload: stop probing for recovery after this long."),
    only: str = typer.Option("kernel,services", help="Parts to run: kernel, services (comma separated)."),
    name: str = typer.Option("bench", help="Name of the bench's stack (its data under <cache>/<name>)."),
    kafka_port: int = typer.Option(28092, envvar="BENCH_KAFKA_PORT"),
    mongo_port: int = typer.Option(28017, envvar="BENCH_MONGO_PORT"),
    port_base: int = typer.Option(
        18100, envvar="BENCH_PORT_BASE", help="Services on base+1..4 (second instances +21..24), simulators +10..14."
    ),
    keep: bool = typer.Option(False, "--keep", help="Leave the stack and services running at the end."),
    out: Path = typer.Option(REPO / ".cache" / "bench", help="Folder of the JSON."),
) -> None:
    """Measure every goal of issue 14 beside its baseline, print one table, write its JSON."""
    logging.basicConfig(level=logging.WARNING)
    for logger in ("faststream.access.confluent", "faststream"):
        logging.getLogger(logger).addFilter(lambda r: r.levelno >= logging.WARNING)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    options = {k: v for k, v in locals().items() if k not in ("console", "out")}
    b = Bench(console, options)
    cache = Path(os.environ.get("COMPLAINTS_CACHE") or REPO / ".cache")
    stamp, started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"), time.monotonic()
    meta = {"started": datetime.now(UTC).isoformat(), "machine_at_start": machine(), "options": options}
    work = out / f"run-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    parts = set(only.split(","))
    platform = Platform(name, kafka_port, mongo_port, Ports(port_base), cache, work)
    bootstrap = f"127.0.0.1:{kafka_port}"
    b.checkpoint = lambda: write_json(work, "partial", document(b.rows, {**meta, "raw": b.raw}))
    try:
        # fresh data, but not stack.sh's --fresh: it would wipe <cache>/<name>, where the JSON is kept
        stack("stop", name, kafka_port, mongo_port, cache)
        for data in ("kafka", "ferretdb"):
            shutil.rmtree(cache / name / data, ignore_errors=True)
        stack("start", name, kafka_port, mongo_port, cache)
        if "kernel" in parts:
            kernel_rows(b, bootstrap, platform.mongodb_url)
        if "services" in parts:
            platform.start()
            services_rows(b, platform)
    finally:
        if not keep:
            with contextlib.suppress(Exception):
                platform.stop()
            with contextlib.suppress(Exception):
                stack("stop", name, kafka_port, mongo_port, cache)
    meta.update(
        finished=datetime.now(UTC).isoformat(),
        seconds=round(time.monotonic() - started),
        machine_at_end=machine(),
        phase_seconds={k: round(v) for k, v in b.phase_times.items()},
        errors=b.errors,
    )
    caption = (
        f"{meta['machine_at_start']['cores']} cores, load average {meta['machine_at_start']['load_average']}"
        f" → {meta['machine_at_end']['load_average']} (other work on the machine disturbs every figure); "
        f"{meta['seconds']} s in all; ✓/✗: goal of issue 14 reached or not"
    )
    console.print(
        render(
            f"make bench  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  (issue 14, each figure beside its "
            "baseline of the same run)",
            b.rows,
            caption,
        )
    )
    path = write_json(out, stamp, document(b.rows, {**meta, "raw": b.raw}))
    console.print(f"JSON: {path}")
    for error in b.errors:
        console.print(f"[red]not measured:[/red] {error}")


if __name__ == "__main__":
    app()
