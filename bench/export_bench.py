"""Scoring throughput of PyTorch fp32, ONNX Runtime fp32 and ONNX Runtime int8, and the
decisions int8 changes, on the HDFS test windows.

    .venv/bin/python bench/export_bench.py --checkpoint CHECKPOINT [--bundle BUNDLE]

Without ``--bundle`` the checkpoint is exported first (into a temporary directory). Writes
bench/results/export_bench.md and .json. All engines use the same threads (default 2) and
the same distinct windows, rendered by the bundle's encoder (max_length from the prompt config,
128 by default) and padded to the longest window of each batch, as serving does. The engines
take turns round by round, and the median round counts, so a neighbour's load burst hits all
of them alike.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

OUT = Path(__file__).parent / "results"
ENGINES = ("torch fp32", "ORT fp32", "ORT int8")
VARIANTS: tuple[Literal["fp32"], Literal["int8"]] = ("fp32", "int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, default=None,
                        help="an exported bundle of the checkpoint (default: export one now)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per engine")
    parser.add_argument("--min-seconds", type=float, default=1.5, help="per round")
    parser.add_argument("--also-threads", type=int, default=1,
                        help="also time every engine with this many threads (0: skip); on a "
                             "shared, oversubscribed machine fewer threads can be faster, and "
                             "the ratios should not depend on that")
    parser.add_argument("--out", type=Path, default=OUT / "export_bench")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        bundle = args.bundle
        export_seconds = None
        if bundle is None:
            from export.exporter import export_bundle

            t = time.perf_counter()
            bundle = export_bundle(args.checkpoint, Path(tmp) / "bundle")
            export_seconds = time.perf_counter() - t
        result = run(args, bundle)
    result["export_seconds"] = export_seconds
    result["loadavg_start"] = load_start
    result["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def run(args: argparse.Namespace, bundle: Path) -> dict[str, Any]:
    import torch

    from logprompt.bundle import load_bundle
    from logprompt.datasets import load_dataset
    from logprompt.prompts import EncodedPrompt, pad_batch
    from training.model import load_checkpoint

    model, meta = load_checkpoint(args.checkpoint)
    thread_counts = [args.threads] + ([args.also_threads] if args.also_threads else [])
    scorers = {
        (variant, threads): load_bundle(bundle, execution_provider="cpu", variant=variant,
                                        intra_op_threads=threads, max_batch=max(args.batch_sizes))
        for variant in VARIANTS for threads in thread_counts
    }
    scorer = scorers["fp32", args.threads]
    encoder = scorer.encoder
    data = load_dataset(meta["dataset"], config=scorer.pipeline_config)
    test = data.windows["test"]
    prompts = [encoder.encode(w.window.templates, w.window.template_ids) for w in test]
    labels = np.array([w.label for w in test])
    distinct = list(dict.fromkeys(prompts))
    random.Random(0).shuffle(distinct)  # batches mix lengths, as a live stream does

    def torch_score(batch: Sequence[EncodedPrompt], threads: int = args.threads) -> np.ndarray:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        feed = pad_batch(batch, encoder.pad_id)
        with torch.inference_mode():
            logits = model(*(torch.from_numpy(feed[k]) for k in
                             ("input_ids", "attention_mask", "token_type_ids")))
            return torch.softmax(logits, dim=-1)[:, 1].numpy()

    engines: dict[str, Callable[[Sequence[EncodedPrompt]], np.ndarray]] = {}
    for threads in thread_counts:
        suffix = "" if threads == args.threads else f" @{threads}"
        engines[f"torch fp32{suffix}"] = functools.partial(torch_score, threads=threads)
        engines[f"ORT fp32{suffix}"] = scorers["fp32", threads].score
        engines[f"ORT int8{suffix}"] = scorers["int8", threads].score
    rates: dict[int, dict[str, float]] = {}
    widths: dict[int, float] = {}
    for size in args.batch_sizes:
        batches = [[distinct[(start + i) % len(distinct)] for i in range(size)]
                   for start in range(0, max(len(distinct), size * 4), size)]
        widths[size] = float(np.mean([max(len(p.input_ids) for p in b) for b in batches]))
        rounds: dict[str, list[float]] = {name: [] for name in engines}
        for score in engines.values():
            score(batches[0])  # warm-up
        for _ in range(args.rounds):
            for name, score in engines.items():
                rounds[name].append(timed_rate(score, batches, args.min_seconds))
        rates[size] = {name: statistics.median(r) for name, r in rounds.items()}
        print(f"batch {size}: " + ", ".join(f"{n} {r:.1f}/s" for n, r in rates[size].items()),
              flush=True)

    # Decisions on every test window (duplicates included, as they occur in the stream).
    index = {p: i for i, p in enumerate(dict.fromkeys(prompts))}
    unique = list(index)
    probs = {
        "torch fp32": np.concatenate([torch_score(unique[i : i + 64])
                                      for i in range(0, len(unique), 64)]),
        "ORT fp32": scorer.score(unique), "ORT int8": scorers["int8", args.threads].score(unique),
    }
    rows = np.array([index[p] for p in prompts])
    # Dynamic int8 quantizes activations per batch, so a window's score depends a little on
    # its batch neighbours (and their padding); fp32 does not, beyond rounding.
    alone = {f"ORT {v}": np.concatenate([scorers[v, args.threads].score([p]) for p in unique])
             for v in VARIANTS}
    threshold = scorer.threshold
    decisions = {name: p[rows] >= threshold for name, p in probs.items()}
    agreement = {
        "threshold": threshold,
        "test_windows": len(prompts),
        "distinct_test_windows": len(unique),
        "int8_unchanged_decisions": float(np.mean(decisions["ORT int8"] == decisions["ORT fp32"])),
        "int8_unchanged_decisions_distinct": float(np.mean(
            (probs["ORT int8"] >= threshold) == (probs["ORT fp32"] >= threshold))),
        "int8_probability_drift_mean": float(np.mean(np.abs(probs["ORT int8"] - probs["ORT fp32"]))),
        "int8_probability_drift_max": float(np.max(np.abs(probs["ORT int8"] - probs["ORT fp32"]))),
        "ort_fp32_vs_torch_max_abs_diff": float(np.max(np.abs(probs["ORT fp32"]
                                                               - probs["torch fp32"]))),
        "batch_dependence_max_abs": {
            name: float(np.max(np.abs(alone[name] - probs[name]))) for name in alone},
        "f1": {name: f1(d, labels) for name, d in decisions.items()},
    }
    import onnxruntime

    return {
        "checkpoint": str(args.checkpoint),
        "checkpoint_dataset": meta["dataset"],
        "checkpoint_metrics_test": meta.get("metrics", {}).get("test"),
        "model_version": scorer.model_version,
        "threads": args.threads,
        "max_length": scorer.pipeline_config.prompt.max_length,
        "max_batch": scorer.max_batch,
        "mean_batch_width": widths,
        "rates": rates,
        "agreement": agreement,
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "torch": torch.__version__,
                    "onnxruntime": onnxruntime.__version__},
        "command": "bench/export_bench.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k in ("checkpoint", "threads", "also_threads")),
    }


def timed_rate(score: Callable[[Sequence[Any]], np.ndarray], batches: list[list[Any]],
               min_seconds: float) -> float:
    """Windows per second over whole batches, at least one batch and ``min_seconds``."""
    done, start, i = 0, time.perf_counter(), 0
    while True:
        batch = batches[i % len(batches)]
        score(batch)
        done += len(batch)
        i += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def f1(decisions: np.ndarray, labels: np.ndarray) -> float:
    tp = float(np.sum(decisions & (labels == 1)))
    fp = float(np.sum(decisions & (labels == 0)))
    fn = float(np.sum(~decisions & (labels == 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Export benchmark: windows/s on CPU",
        "",
        f"Checkpoint `{result['checkpoint']}` ({result['checkpoint_dataset']}), bundle "
        f"`{result['model_version']}`; {result['machine']['cores']} cores shared with other "
        f"work (load average {result['loadavg_start'][0]:.1f} at start, "
        f"{result['loadavg_end'][0]:.1f} at end); torch {result['machine']['torch']}, "
        f"onnxruntime {result['machine']['onnxruntime']}.",
        f"Distinct HDFS test windows, max_length {result['max_length']}, padded to the longest "
        "window of each batch; median of rounds in which all engines take turns.",
    ]
    first = next(iter(result["rates"].values()))
    suffixes = [""] + sorted({name.rsplit(" ", 1)[1] for name in first if "@" in name})
    for suffix in suffixes:
        threads = result["threads"] if not suffix else int(suffix[1:])
        names = [f"{engine}{' ' + suffix if suffix else ''}" for engine in ENGINES]
        lines += [
            "",
            f"**{threads} thread(s)** for every engine:",
            "",
            "| batch | mean width | torch fp32 | ORT fp32 | ORT int8 | ORT fp32 / torch "
            "| ORT int8 / torch |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for size, rates in result["rates"].items():
            base, fp32, int8 = (rates[n] for n in names)
            lines.append(
                f"| {size} | {result['mean_batch_width'][size]:.0f} | {base:.1f} | {fp32:.1f} "
                f"| {int8:.1f} | {fp32 / base:.2f}x | {int8 / base:.2f}x |")
    a = result["agreement"]
    lines += [
        "",
        f"int8 vs fp32 on all {a['test_windows']} HDFS test windows "
        f"({a['distinct_test_windows']} distinct), threshold {a['threshold']:.4g}: "
        f"**{a['int8_unchanged_decisions']:.2%} of decisions unchanged** "
        f"({a['int8_unchanged_decisions_distinct']:.2%} of distinct windows); probability "
        f"drift mean {a['int8_probability_drift_mean']:.2g}, max "
        f"{a['int8_probability_drift_max']:.2g}. ORT fp32 vs torch: max abs diff "
        f"{a['ort_fp32_vs_torch_max_abs_diff']:.2g}.",
        "Batch dependence (max abs change of a window's probability, scored alone vs in "
        f"batches of {result['max_batch']}): " + ", ".join(
            f"{k} {v:.2g}" for k, v in a["batch_dependence_max_abs"].items()) + ".",
        "Test F1 at the threshold: " + ", ".join(f"{k} {v:.4f}" for k, v in a["f1"].items())
        + ".",
    ]
    if result.get("export_seconds"):
        lines.append(f"Export (fp32 + int8 + validation) took {result['export_seconds']:.0f} s.")
    lines += ["", f"Reproduce: `.venv/bin/python {result['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
