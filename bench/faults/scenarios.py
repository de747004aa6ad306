"""The fault scenarios. Each run: fresh topics and group, streamer process(es) consuming a
paced replay, one fault injected mid-stream, then wait until the group has committed the end
of every partition, stop the streamers, read the alerts topic with read_committed and compare
with the offline reference (which equals an uninterrupted run: the ``baseline`` scenario
checks exactly that on every repetition).
"""

from __future__ import annotations

import os
import random
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.faults.harness import (
    Cluster,
    Fleet,
    StreamerSpec,
    Topics,
    create_topics,
    delete_topics,
    end_offsets,
    group_done,
    paced_replay,
    read_alerts,
    wait_stable,
)
from bench.faults.workload import Outcome, Workload, compare, compare_switch
from logprompt.alerts import Alert

STARTUP_S = 3.0  # a streamer process needs about this long to import, load and join


@dataclass
class Run:
    """What a scenario's fault injection can touch."""

    cluster: Cluster
    workload: Workload
    topics: Topics
    fleet: Fleet
    rng: random.Random
    replay_s: float
    bundle_link: Path
    notes: dict[str, Any] = field(default_factory=dict)

    def switch_bundle(self, target: Path) -> None:
        """Re-point the bundle symlink in one rename(2), as a deployment does."""
        tmp = self.bundle_link.with_name(".current.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, self.bundle_link)


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    inject: Callable[[Run], None]
    members: tuple[str, ...] = ("a",)
    partitions: int = 4
    static: bool = False
    needs_broker: bool = False
    reload_interval_s: float = 3600.0
    extra_env: dict[str, str] = field(default_factory=dict)
    # Problems beyond lost/duplicated/extra (e.g. "the switch did not happen mid-stream").
    check: Callable[[Run, list[Alert]], list[str]] = lambda run, alerts: []
    judge: Callable[[list[Alert], Workload], Outcome] = (
        lambda alerts, w: compare(alerts, w.ref_v1))


# -- fault injections ------------------------------------------------------------------------------
def _nothing(run: Run) -> None:
    pass


def _kill9(run: Run, times: int = 4) -> None:
    """SIGKILL the consumer at random points, restart it at once under the same name (static
    member, same transactional.id: the restart fences its zombie)."""
    points = []
    for _ in range(times):
        delay = run.rng.uniform(STARTUP_S - 0.5, STARTUP_S + 2.5)
        run.fleet.wait(delay)
        run.fleet.members["a"].kill9()
        run.fleet.start("a")
        points.append(round(delay, 2))
    run.notes["kill_after_s"] = points


def _broker_restart(run: Run) -> None:
    """SIGKILL the broker mid-stream and start it again on the same ports and data dir."""
    broker = run.cluster.broker
    assert broker is not None, "needs a broker this process owns"
    run.fleet.wait(run.rng.uniform(STARTUP_S + 1.0, STARTUP_S + 3.0))
    broker.kill()
    down = run.rng.uniform(1.0, 3.0)
    time.sleep(down)
    started = time.monotonic()
    broker.start(timeout_s=120)
    run.notes["broker_down_s"] = round(down + time.monotonic() - started, 2)


def _scale(run: Run) -> None:
    """1 -> 3 -> 1 consumers while the replay runs: cooperative rebalances mid-transaction."""
    run.fleet.wait(STARTUP_S)
    for name in ("b", "c"):
        run.fleet.start(name)
    joined = run.fleet.wait(30, until=lambda: all(
        run.fleet.members[n].logged("partitions assigned") for n in ("b", "c")))
    run.fleet.wait(run.rng.uniform(1.0, 3.0))
    codes = {n: run.fleet.stop(n) for n in ("b", "c")}
    run.notes.update(joined=joined, exit_codes=codes)


STALL_POLL_MS = 7000  # max.poll.interval.ms of the stall scenario (>= session.timeout.ms)


def _stall(run: Run) -> None:
    """SIGSTOP one of two consumers past max.poll.interval.ms (and the session timeout): the
    group moves its partitions to the other; SIGCONT it: it finds itself fenced, aborts, and
    rejoins."""
    fleet = run.fleet
    got = fleet.wait(30, until=lambda: fleet.members["b"].logged("partitions assigned"))
    fleet.wait(run.rng.uniform(1.0, 2.5))
    stalled = fleet.members["b"]
    stalled.signal(signal.SIGSTOP)
    stall_s = STALL_POLL_MS / 1000 + 4.0
    fleet.wait(stall_s)
    stalled.signal(signal.SIGCONT)
    run.notes.update(b_had_partitions=got, stalled_s=stall_s)


def _reload(target: Callable[[Workload], Path]) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        run.fleet.wait(STARTUP_S + run.rng.uniform(0.3, 0.6) * run.replay_s)
        run.switch_bundle(target(run.workload))
        run.notes["switched_at_s"] = "mid-replay"
    return inject


def _check_refused(run: Run, alerts: list[Alert]) -> list[str]:
    problems = []
    if not any(p.logged("new bundle refused; the old one keeps serving") for p in run.fleet.history):
        problems.append("the corrupt bundle was not refused")
    if {a.model_version for a in alerts} - {run.workload.ref_v1.model_version}:
        problems.append("alerts from a model other than the old one")
    return problems


def _check_switched(run: Run, alerts: list[Alert]) -> list[str]:
    versions = {a.model_version for a in alerts}
    want = {run.workload.ref_v1.model_version, run.workload.ref_v2.model_version}
    return [] if versions == want else [f"switch not seen mid-stream: versions {sorted(versions)}"]


def _check_stall(run: Run, alerts: list[Alert]) -> list[str]:
    b = [p for p in run.fleet.history if p.instance == "b"]
    fenced = any(p.logged(e) for p in b for e in (
        "partitions lost", "transaction aborted; rewinding to the committed offsets",
        "fatal transaction error; exiting so a restart can recover", "fatal kafka error"))
    run.notes["stalled_consumer_fenced"] = fenced or bool(run.fleet.restarts)
    # Resumed: after SIGCONT it (or its restart) joined again and got partitions back.
    assigned = sum(p.log_path.read_bytes().count(b'"event":"partitions assigned"') for p in b)
    run.notes["stalled_consumer_resumed"] = assigned >= 2
    problems = [] if run.notes["stalled_consumer_fenced"] else ["the stalled consumer was not fenced"]
    if not run.notes["stalled_consumer_resumed"]:
        problems.append("the stalled consumer did not get partitions again after SIGCONT")
    return problems


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("baseline", "no fault: the uninterrupted run equals offline scoring", _nothing),
    Scenario("kill9", "consumer SIGKILLed 4 times at random points, restarted each time",
             _kill9, static=True),
    Scenario("broker_restart", "broker SIGKILLed mid-stream, restarted on its data dir",
             _broker_restart, static=True, needs_broker=True),
    Scenario("scale_1_3_1", "consumers scaled 1 -> 3 -> 1 under load (6 partitions)", _scale,
             partitions=6),
    Scenario("stall", "one of 2 consumers SIGSTOPped past max.poll.interval.ms, then SIGCONT",
             _stall, members=("a", "b"),
             extra_env={"LOGPROMPT_KAFKA__EXTRA": f'{{"max.poll.interval.ms": "{STALL_POLL_MS}"}}'},
             check=_check_stall),
    Scenario("reload_new", "hot reload of a different model (same table) mid-stream",
             _reload(lambda w: w.v2), reload_interval_s=0.5, check=_check_switched,
             judge=lambda alerts, w: compare_switch(alerts, w.ref_v1, w.ref_v2)),
    Scenario("reload_corrupt", "hot reload of a corrupt bundle mid-stream: refused",
             _reload(lambda w: w.corrupt), reload_interval_s=0.5, check=_check_refused),
)}


@dataclass
class RunResult:
    scenario: str
    rep: int
    ok: bool
    seconds: float
    alerts: int = 0
    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: int = 0
    restarts: int = 0
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    logs: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("logs")
        return out


def run_scenario(name: str, cluster: Cluster, workload: Workload, work_dir: Path, rep: int,
                 replay_s: float, seed: int, done_timeout_s: float = 240.0) -> RunResult:
    sc = SCENARIOS[name]
    started = time.monotonic()
    run_dir = work_dir / f"{name}-{rep}"
    run_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "current"
    link.unlink(missing_ok=True)
    link.symlink_to(workload.v1)
    topics = create_topics(cluster.bootstrap, sc.partitions)
    spec = StreamerSpec(cluster, topics, link, f"faults-{name}-{rep}-{seed}", run_dir,
                        static=sc.static, reload_interval_s=sc.reload_interval_s,
                        extra_env=dict(sc.extra_env))
    fleet = Fleet(spec)
    run = Run(cluster, workload, topics, fleet, random.Random(f"{name}-{rep}-{seed}"), replay_s,
              link)
    result = RunResult(name, rep, False, 0.0)
    try:
        for member in sc.members:
            fleet.start(member)
        replay = paced_replay(cluster.bootstrap, topics.logs, workload.values, workload.keys,
                              replay_s)
        sc.inject(run)
        while replay.is_alive():
            fleet.wait(0.5)
        ends = end_offsets(cluster.bootstrap, topics.logs, topics.partitions)
        if sum(ends.values()) != len(workload.values):
            result.problems.append(f"input has {sum(ends.values())} records, "
                                   f"expected {len(workload.values)}")
        last = [0.0]

        def done() -> bool:  # asking the coordinator every 0.2 s would be wasteful
            if time.monotonic() - last[0] < 1.0:
                return False
            last[0] = time.monotonic()
            return group_done(cluster.bootstrap, spec.group, topics.logs, ends)

        if not fleet.wait(done_timeout_s, until=done):
            result.problems.append("the group did not commit the end of the input in time")
        result.restarts = len(fleet.restarts)
        if fleet.restarts:
            run.notes["restarted"] = fleet.restarts
        codes = fleet.stop_all()
        if any(codes.values()):
            run.notes["final_exit_codes"] = codes
        if not wait_stable(cluster.bootstrap, topics.alerts, 3, 60):
            result.problems.append("a transaction on the alerts topic never completed")
        alerts = read_alerts(cluster.bootstrap, topics.alerts, 3)
        outcome = sc.judge(alerts, workload)
        result.problems += sc.check(run, alerts)
        result.alerts, result.expected = outcome.alerts, outcome.expected
        result.lost, result.duplicated, result.extra = (
            outcome.lost, outcome.duplicated, outcome.extra)
        run.notes["versions"] = outcome.versions
        result.ok = outcome.ok and not result.problems
    except Exception:  # noqa: BLE001 - a broken run is a failed result, not a crashed suite
        result.problems.append(traceback.format_exc(limit=5))
    finally:
        if not result.ok:
            result.logs = fleet.log_tail()
        fleet.kill_all()
        delete_topics(cluster.bootstrap, topics)
    result.notes = run.notes
    result.seconds = round(time.monotonic() - started, 1)
    return result
