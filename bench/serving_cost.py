"""What a bundle costs to serve, as a ratio to another bundle measured in the same run: ONNX
Runtime windows/s of each bundle (fp32 and int8) on the same distinct HDFS test windows.

    .venv/bin/python bench/serving_cost.py --bundles SINGLE_BUNDLE ENSEMBLE_BUNDLE

The first bundle is the reference. Bundles take turns round by round and the median round
counts, so a neighbour's load burst hits all of them alike (these machines are shared). Each
bundle renders the windows with its own encoder, as serving does. Writes
bench/results/serving_cost.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
from pathlib import Path
from typing import Any

from export_bench import OUT, VARIANTS, timed_rate

from logprompt.bundle import load_bundle
from logprompt.datasets import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, nargs="+", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=1.5)
    parser.add_argument("--out", type=Path, default=OUT / "serving_cost")
    args = parser.parse_args()
    if len({path.name for path in args.bundles}) < len(args.bundles):
        parser.error("bundle directories need distinct names (they label the rows)")
    load_start = os.getloadavg()
    scorers = {(path, variant): load_bundle(path, execution_provider="cpu", variant=variant,
                                            intra_op_threads=args.threads,
                                            max_batch=max(args.batch_sizes))
               for path in args.bundles for variant in VARIANTS}
    first = scorers[args.bundles[0], "fp32"]
    dataset = first.manifest.training.dataset
    test = load_dataset(dataset, config=first.pipeline_config).windows["test"]
    order = list(range(len(test)))
    random.Random(0).shuffle(order)  # batches mix lengths, as a live stream does
    prompts = {path: list(dict.fromkeys(scorers[path, "fp32"].encoder.encode(
        test[i].window.templates, test[i].window.template_ids) for i in order))
        for path in args.bundles}  # both variants of a bundle share its encoder
    rates: dict[str, dict[str, float]] = {}
    for size in args.batch_sizes:
        batches: dict[str, list[list[Any]]] = {}
        for (path, variant), scorer in scorers.items():
            batches[f"{path.name} {variant}"] = [prompts[path][i : i + size]
                                                 for i in range(0, len(prompts[path]), size)]
            scorer.score(batches[f"{path.name} {variant}"][0])  # warm-up
        rounds: dict[str, list[float]] = {name: [] for name in batches}
        for _ in range(args.rounds):
            for (path, variant), scorer in scorers.items():
                name = f"{path.name} {variant}"
                rounds[name].append(timed_rate(scorer.score, batches[name], args.min_seconds))
        rates[str(size)] = {name: statistics.median(r) for name, r in rounds.items()}
        print(f"batch {size}: " + ", ".join(f"{n} {r:.1f}/s" for n, r in rates[str(size)].items()),
              flush=True)
    result: dict[str, Any] = {
        "bundles": [{"path": str(p), "model_version": scorers[p, "fp32"].model_version,
                     "members": _members(p)} for p in args.bundles],
        "dataset": dataset, "threads": args.threads, "rates": rates,
        "loadavg_start": load_start, "loadavg_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result, args.bundles))
    print(markdown(result, args.bundles))


def _members(bundle: Path) -> int:
    """Ensemble members the bundle serves (1 for a single model)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    members = manifest.get("training", {}).get("metrics", {}).get("members", [])
    return sum(1 for m in members if m.get("served")) or 1


def markdown(result: dict[str, Any], bundles: list[Path]) -> str:
    ref = bundles[0].name
    lines = ["# Serving cost of bundles, windows/s (ONNX Runtime, CPU)", "",
             f"{result['dataset']} test windows (distinct), {result['threads']} threads; load "
             f"average {result['loadavg_start'][0]:.1f} at start, "
             f"{result['loadavg_end'][0]:.1f} at end. Reference: `{ref}`.", "",
             "| bundle | members | variant | batch | windows/s | vs reference, same variant |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for size, row in result["rates"].items():
        for info in result["bundles"]:
            name = Path(info["path"]).name
            for variant in VARIANTS:
                rate = row[f"{name} {variant}"]
                lines.append(f"| `{name}` | {info['members']} | {variant} | {size} | {rate:.1f} | "
                             f"{rate / row[f'{ref} {variant}']:.2f}x |")
    lines += ["", "Reproduce: `.venv/bin/python bench/serving_cost.py --bundles "
              + " ".join(info["path"] for info in result["bundles"]) + "`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
