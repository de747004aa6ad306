"""Decisions and speed of the int8 quantization scopes of ``export/quantize.py`` against fp32,
on the test windows of a bundle's data set (not a test; results are printed as a table).

    .venv/bin/python bench/int8_scopes.py --bundle BUNDLE [--threads 1] [--batch 8]

Each scope is quantized afresh from the bundle's ``model.onnx``; all sessions use the same
threads and the same distinct test windows, sorted by length and batched as serving does.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from export.quantize import INT8_SCOPES, quantize_int8
from logprompt.bundle import MODEL_FILES, load_bundle
from logprompt.datasets import load_dataset
from logprompt.prompts import pad_batch


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scorer = load_bundle(args.bundle, execution_provider="cpu", variant="fp32", warmup=False)
    encoder = scorer.encoder
    test = load_dataset(scorer.manifest.training.dataset,
                        config=scorer.pipeline_config).windows["test"]
    prompts = [encoder.encode(w.window.templates, w.window.template_ids) for w in test]
    distinct = sorted(dict.fromkeys(prompts), key=lambda p: len(p.input_ids))
    position = {p: i for i, p in enumerate(distinct)}
    rows = np.array([position[p] for p in prompts])

    def score(s: ort.InferenceSession, batch: int) -> np.ndarray:
        return np.concatenate([s.run(["anomaly_probability"], pad_batch(
            distinct[i : i + batch], encoder.pad_id))[0] for i in range(0, len(distinct), batch)])

    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"fp32": args.bundle / MODEL_FILES["fp32"]}
        for scope in INT8_SCOPES:
            graphs[f"int8 {scope}"] = Path(tmp) / f"{scope}.onnx"
            quantize_int8(graphs["fp32"], graphs[f"int8 {scope}"], scope)
        sessions = {name: session(path, args.threads) for name, path in graphs.items()}
        reference = score(sessions["fp32"], args.batch)
        print(f"{len(prompts)} test windows ({len(distinct)} distinct), threshold "
              f"{scorer.threshold:.4g}, {args.threads} thread(s), batch {args.batch}\n")
        print("| graph | unchanged decisions | drift mean | drift max | windows/s | vs fp32 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        rates: dict[str, float] = {}
        for name, s in sessions.items():
            probability = score(s, args.batch)
            timings = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                score(s, args.batch)
                timings.append(len(distinct) / (time.perf_counter() - started))
            rates[name] = statistics.median(timings)
            same = (probability[rows] >= scorer.threshold) == (reference[rows] >= scorer.threshold)
            drift = np.abs(probability - reference)
            print(f"| {name} | {same.mean():.2%} | {drift.mean():.4f} | {drift.max():.3f} | "
                  f"{rates[name]:.1f} | {rates[name] / rates['fp32']:.2f}x |")


if __name__ == "__main__":
    main()
