"""Tables of mean (min-max) over label samples from run_table.py results (JSON lines).

    .venv/bin/python bench/training/summarize.py bench/training/results/*.jsonl \
        --csv bench/training/results/summary.csv
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

METHODS = ("prompt_model", "logreg_counts", "logreg_best", "unseen_templates",
           "unseen_templates_labelled")
SHORT = {"prompt_model": "LogPrompt", "logreg_counts": "LR counts",
         "logreg_best": "LR (transform by val)",
         "unseen_templates": "unseen (all train)", "unseen_templates_labelled": "unseen (labelled)"}


def spread(values: list[float]) -> str:
    return f"{sum(values) / len(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", type=Path, nargs="+")
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--tags", nargs="*", default=None, help="only runs with these tags")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    args = ap.parse_args()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    latest: dict[str, dict] = {}  # a run repeated later replaces the earlier one
    for f in args.files:
        for line in f.read_text().splitlines():
            row = json.loads(line)
            latest[row["run"]] = row
    for row in latest.values():
        if args.tags is not None and row["tag"] not in args.tags:
            continue
        groups[(row["dataset"], row["budget"], row["loss"], row["tag"])].append(row)
    out_rows = []
    print("| data | labels | loss | samples | labelled windows (anomalous) | method | F1 | P | R "
          "| specificity | PR-AUC | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (ds, budget, loss, tag), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r["sample"])
        lab = f"{rows[0]['labelled']['windows']} ({'/'.join(str(r['labelled']['anomalous']) for r in rows)})"
        samples = ",".join(str(r["sample"]) for r in rows)
        for m in args.methods:
            if m not in rows[0]["results"]:
                continue
            t = [r["results"][m]["test"] for r in rows]
            cells = {k: spread([x[k] for x in t]) for k in ("f1", "precision", "recall",
                                                              "specificity", "pr_auc")}
            secs = (spread([r["train_wall_s"] for r in rows]).split(" ")[0]
                    if m == "prompt_model" else "")
            print(f"| {ds}{tag} | {budget:g} | {loss} | {samples} | {lab} | {SHORT[m]} | "
                  f"{cells['f1']} | {cells['precision']} | {cells['recall']} | "
                  f"{cells['specificity']} | {cells['pr_auc']} | {secs} |")
            out_rows.append({"dataset": ds, "tag": tag, "budget": budget, "loss": loss,
                             "samples": samples, "method": m,
                             **{f"{k}_mean": sum(x[k] for x in t) / len(t) for k in cells},
                             **{f"{k}_min": min(x[k] for x in t) for k in cells},
                             **{f"{k}_max": max(x[k] for x in t) for k in cells},
                             "f1_per_sample": [round(x["f1"], 4) for x in t]})
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(out_rows[0]))
            w.writeheader()
            w.writerows(out_rows)


if __name__ == "__main__":
    main()
