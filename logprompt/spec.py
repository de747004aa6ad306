"""Your own logs as a data set: a TOML spec names the log file, its labels and the pipeline.

```toml
name = "shop"                       # used in model versions and reports
log = "shop.log"                    # plain or .gz, text or JSON lines (paths relative to the spec)
labels = "shop_labels.csv"          # `key,label` per source key (label: 1/0 or Anomaly/Normal)
split = [0.6, 0.2, 0.2]             # chronological train / val / test, by session first seen

[pipeline]                          # a PipelineConfig: a preset, then overrides of its fields
preset = "json"
[pipeline.record]
kind = "text"
text_timestamp_regex = '^(?P<timestamp>\\S+) \\S+ (?P<level>[A-Z]+) '
[pipeline.source]
kind = "regex"
pattern = '\\[(req-[0-9a-f]+)\\]'
```
Sessions (windows per source key) take their labels from ``labels``; keys it does not list are
normal. Every section is validated by the same pydantic models the bundle carries.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from logprompt.pipeline import PipelineConfig
from logprompt.presets import preset

if TYPE_CHECKING:
    from logprompt.datasets import Dataset


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    log: Path
    labels: Path
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    pipeline: dict[str, Any] = {}


def pipeline_from_dict(data: dict[str, Any]) -> PipelineConfig:
    """A preset (``preset = "json"``; default: the generic defaults) with its fields overridden."""
    data = dict(data)
    base = preset(data.pop("preset")).model_dump() if "preset" in data else {}
    for section, values in data.items():
        if isinstance(values, dict) and isinstance(base.get(section), dict):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    return PipelineConfig.model_validate(base)


def read_spec(path: Path) -> tuple[DatasetSpec, PipelineConfig]:
    spec = DatasetSpec.model_validate(tomllib.loads(path.read_text()))
    here = path.parent
    spec = spec.model_copy(update={"log": here / spec.log, "labels": here / spec.labels})
    config = pipeline_from_dict({**spec.pipeline, "name": spec.name})
    return spec, config


def load_spec_dataset(path: Path, limit: int | None = None) -> Dataset:
    """Labelled windows of the spec's log, through the same protocol as the Loghub sets."""
    from logprompt.datasets import build_dataset, read_lines, split_by_session

    spec, config = read_spec(path)
    labels: dict[str, int] = {}
    for line in spec.labels.read_text().splitlines():
        key, _, label = line.strip().partition(",")
        if key and label and key.lower() not in ("key", "blockid", "source"):
            labels[key] = 1 if label.strip().lower() in ("1", "anomaly", "abnormal") else 0
    records = list(read_lines(spec.log, limit=limit))
    return build_dataset(spec.name, config, split_by_session(records, config, spec.split), labels)
