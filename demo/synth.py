"""Write the synthetic service logs as files: a log, its session labels and a data set spec.

The text form has no preset, so the spec doubles as the worked example of onboarding a new log
format (docs/your-logs.md).
"""

from __future__ import annotations

from pathlib import Path

from logprompt import synthetic

SPEC = """\
# A data set spec (logprompt/spec.py): train with `logprompt train --dataset {spec_name}`.
name = "shop"
log = "{log_name}"
labels = "{labels_name}"
split = [0.6, 0.2, 0.2]

[pipeline]
preset = "json"                 # start from the generic preset, then override:

[pipeline.record]               # `2023-11-14T22:13:20.031+00:00 api INFO [req-1f2e...] GET ...`
kind = "text"
text_timestamp_regex = '^(?P<timestamp>\\S+) \\S+ (?P<level>[A-Z]+) '

[pipeline.parser]               # Drain sees the message only, not the header
content_regex = '^\\S+ \\S+ [A-Z]+ \\[[^\\]]+\\] (?P<content>.*)$'

[pipeline.source]               # one session per request id
kind = "regex"
pattern = '\\[(req-[0-9a-f]+)\\]'
default_key = "unkeyed"

[pipeline.window]               # a request lasts < 1 s: close its session after 5 s of quiet
kind = "session"
gap_s = 5.0
max_events = 64
"""


def write_synthetic(out_dir: Path, sessions: int = 3000, seed: int = 0, fmt: str = "text"
                    ) -> Path:
    """Write ``shop.log`` (or ``shop.jsonl``), ``shop_labels.csv`` and ``shop.toml``; return the
    spec's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines, labels = synthetic.generate(n_sessions=sessions, seed=seed)
    log = out_dir / ("shop.log" if fmt == "text" else "shop.jsonl")
    with log.open("wb") as handle:
        for line in lines:
            handle.write((line.to_text() if fmt == "text" else line.to_json()) + b"\n")
    labels_path = out_dir / "shop_labels.csv"
    labels_path.write_text("key,label\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    spec = out_dir / "shop.toml"
    spec.write_text(SPEC.format(spec_name=spec.name, log_name=log.name, labels_name=labels_path.name))
    return spec
