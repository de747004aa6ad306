"""Parsing throughput on HDFS_2pct and the number of templates and windows per data set.

    .venv/bin/python bench/core_bench.py [--datasets ../shared/datasets]

Writes bench/results/core_bench.md and .json. Stage rates are measured in one run over the same
lines, so their ratios are comparable even on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from logprompt.datasets import DATASET_NAMES, default_datasets_root, learn_templates, load_dataset, read_lines
from logprompt.parsing import TemplateMatcher
from logprompt.pipeline import Pipeline
from logprompt.presets import HDFS
from logprompt.records import decode_record

OUT = Path(__file__).parent / "results"


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def parsing_rates(root: Path) -> dict[str, float]:
    records = list(read_lines(root / "hdfs" / "HDFS_2pct.log.gz"))
    values = [r.value for r in records]
    t = time.perf_counter()
    table = learn_templates(HDFS, records)
    learn = rate(len(records), time.perf_counter() - t)
    t = time.perf_counter()
    messages = [decode_record(v, HDFS.record).message for v in values]
    decode = rate(len(values), time.perf_counter() - t)
    matcher = TemplateMatcher(HDFS.parser, table)
    t = time.perf_counter()
    for message in messages:
        matcher.parse(message)
    match = rate(len(messages), time.perf_counter() - t)
    pipeline = Pipeline(HDFS, table)
    t = time.perf_counter()
    for record in records:
        pipeline.process(record.value, record.position)
    pipeline.flush()
    full = rate(len(records), time.perf_counter() - t)
    return {"lines": len(records), "templates": len(table.templates), "learn_lines_per_s": learn,
            "decode_lines_per_s": decode, "match_lines_per_s": match,
            "pipeline_lines_per_s": full}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=default_datasets_root())
    args = parser.parse_args()
    rates = parsing_rates(args.datasets)
    sets = []
    for name in DATASET_NAMES:
        t = time.perf_counter()
        summary = load_dataset(name, root=args.datasets).summary()
        summary["load_seconds"] = round(time.perf_counter() - t, 1)
        sets.append(summary)
    result = {"machine": f"{platform.machine()}, {platform.python_version()}", "hdfs_2pct": rates,
              "datasets": sets}
    OUT.mkdir(exist_ok=True)
    (OUT / "core_bench.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Core parsing benchmark", "",
        "Command: `.venv/bin/python bench/core_bench.py` (one process, one thread).", "",
        f"HDFS_2pct, {rates['lines']:,} lines, {rates['templates']} templates learned:", "",
        "| stage | lines/s |", "| --- | --- |",
        f"| decode (text + timestamp) | {rates['decode_lines_per_s']:,.0f} |",
        f"| Drain learn (training) | {rates['learn_lines_per_s']:,.0f} |",
        f"| Drain match (serving, cached) | {rates['match_lines_per_s']:,.0f} |",
        f"| full pipeline (decode, match, keys, windows) | {rates['pipeline_lines_per_s']:,.0f} |",
        "", "Templates and windows per data set (train / val / test, anomalous in brackets):", "",
        "| data set | templates | train | val | test | load s |", "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in sets:
        lines.append(
            f"| {s['name']} | {s['templates']} | {s['train_windows']} ({s['train_anomalous']}) | "
            f"{s['val_windows']} ({s['val_anomalous']}) | {s['test_windows']} ({s['test_anomalous']}) | "
            f"{s['load_seconds']} |")
    (OUT / "core_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
