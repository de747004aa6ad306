"""Run the fault suite: ``.venv/bin/python -m bench.faults --reps 5``.

Starts the project's own Kafka broker (loopback, a temporary data dir; it is the broker the
``broker_restart`` scenario kills), builds the input and bundles once, runs every scenario
``--reps`` times (repetition by repetition, so a cut-short run still covers every scenario)
and writes ``bench/results/faults.json`` and ``faults.md`` after each run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.faults.harness import REPO, Cluster
from bench.faults.scenarios import SCENARIOS, RunResult, run_scenario
from bench.faults.workload import build_workload
from logprompt.local_kafka import LocalKafkaBroker

RESULTS = REPO / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--lines", type=int, default=12_000, help="input lines per run")
    parser.add_argument("--replay-s", type=float, default=10.0, help="replay duration per run")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "faults",
                        help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)
    names = [n for n in args.scenarios.split(",") if n]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    command = "python -m bench.faults " + " ".join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        work = Path(tmp)
        broker = LocalKafkaBroker(data_dir=work / "kafka").start()
        try:
            cluster = Cluster(broker.bootstrap_servers, broker)
            t0 = time.monotonic()
            workload = build_workload(work / "bundles", args.lines)
            print(f"{broker.version_line()}\nworkload: {len(workload.values)} lines, "
                  f"{workload.ref_v1.windows} windows, {len(workload.ref_v1.alerts)} alerts (v1), "
                  f"{len(workload.ref_v2.alerts)} (v2), built in {time.monotonic() - t0:.0f}s",
                  flush=True)
            results: list[RunResult] = []
            for rep in range(1, args.reps + 1):
                for name in names:
                    r = run_scenario(name, cluster, workload, work / "runs", rep, args.replay_s,
                                     args.seed)
                    results.append(r)
                    print(f"{name:15s} rep {rep}: {'ok ' if r.ok else 'FAIL'} lost {r.lost} "
                          f"dup {r.duplicated} extra {r.extra} alerts {r.alerts}/{r.expected} "
                          f"restarts {r.restarts} {r.seconds:.0f}s {r.problems or ''} {r.notes}",
                          flush=True)
                    if not r.ok:
                        print(r.logs[-4000:], flush=True)
                    write(args.out, command, args, workload_info(workload), results)
        finally:
            broker.stop()
    return 0 if all(r.ok for r in results) else 1


def workload_info(workload: Any) -> dict[str, Any]:
    return {"lines": len(workload.values), "windows": workload.ref_v1.windows,
            "alerts_v1": len(workload.ref_v1.alerts), "alerts_v2": len(workload.ref_v2.alerts),
            "alerts_both": len(set(workload.ref_v1.alerts) & set(workload.ref_v2.alerts))}


def summary(results: list[RunResult]) -> list[dict[str, Any]]:
    rows = []
    for name in dict.fromkeys(r.scenario for r in results):
        rs = [r for r in results if r.scenario == name]
        rows.append({"scenario": name, "what": SCENARIOS[name].what, "reps": len(rs),
                     "passed": sum(r.ok for r in rs), "lost": sum(r.lost for r in rs),
                     "duplicated": sum(r.duplicated for r in rs), "extra": sum(r.extra for r in rs),
                     "alerts_per_run": round(sum(r.alerts for r in rs) / len(rs)),
                     "restarts": sum(r.restarts for r in rs),
                     "mean_s": round(sum(r.seconds for r in rs) / len(rs), 1)})
    return rows


def write(out: Path, command: str, args: argparse.Namespace, workload: dict[str, Any],
          results: list[RunResult]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = summary(results)
    data = {"command": command, "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}",
            "lines": args.lines, "replay_s": args.replay_s, "workload": workload,
            "summary": rows, "runs": [r.as_dict() for r in results]}
    out.with_suffix(".json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    lines = [f"# Fault suite results\n\n`{command}` ({data['when']}, {data['machine']})\n",
             f"Input per run: {workload['lines']} lines, {workload['windows']} windows, "
             f"{workload['alerts_v1']} expected alerts (v1); replayed over {args.replay_s:.0f} s.\n",
             "| scenario | what | reps | passed | lost | duplicated | extra | alerts/run | "
             "streamer restarts | mean s/run |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['scenario']} | {r['what']} | {r['reps']} | {r['passed']} | {r['lost']} | "
              f"{r['duplicated']} | {r['extra']} | {r['alerts_per_run']} | {r['restarts']} | "
              f"{r['mean_s']} |" for r in rows]
    failed = [r for r in results if not r.ok]
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"* {r.scenario} rep {r.rep}: {'; '.join(p.splitlines()[-1] for p in r.problems)}"
                  f" (lost {r.lost}, dup {r.duplicated}, extra {r.extra})" for r in failed]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
