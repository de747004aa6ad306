"""Pipeline presets for the Loghub data sets in ``../shared/datasets`` and for JSON logs."""

from __future__ import annotations

from logprompt.parsing import ParserConfig
from logprompt.pipeline import PipelineConfig
from logprompt.records import RecordFormat
from logprompt.sources import SourceKeyConfig
from logprompt.windows import WindowConfig

_DAY = 86400.0

# HDFS: `081109 203615 148 INFO dfs.DataNode$PacketResponder: message`; one session per block.
HDFS = PipelineConfig(
    name="hdfs",
    record=RecordFormat(
        kind="text",
        text_timestamp_regex=r"^(?P<timestamp>\d{6} \d{6}) \d+ (?P<level>[A-Z]+) ",
        text_timestamp_format="%y%m%d %H%M%S",
    ),
    parser=ParserConfig(content_regex=r"^\d{6} \d{6} \d+ [A-Z]+ [^:]+: (?P<content>.*)$"),
    source=SourceKeyConfig(kind="regex", pattern=r"(blk_-?\d+)", default_key=None),
    # A block's lines span at most 15 hours in HDFS_2pct: an 18-hour gap keeps one session per
    # block, as in the usual evaluation, while a live stream still closes finished blocks.
    window=WindowConfig(kind="session", gap_s=18 * 3600.0, max_events=512),
)

# BGL raw: `- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 ... message`.
_BGL_HEADER = r"^\S+ (?P<timestamp>\d+) \S+ \S+ \S+ \S+ \S+ \S+ (?P<level>\S+) "
BGL_RAW = PipelineConfig(
    name="bgl_raw",
    record=RecordFormat(kind="text", text_timestamp_regex=_BGL_HEADER),
    parser=ParserConfig(content_regex=_BGL_HEADER + r"(?P<content>.*)$"),
    source=SourceKeyConfig(kind="fixed", fixed_key="bgl"),
    window=WindowConfig(kind="sliding", size=100, step=100, max_events=100),
)

# BGL templated (BGL_templated_windows.tsv.gz): messages are already templates with <*>.
BGL_TEMPLATED = PipelineConfig(
    name="bgl_templated",
    record=RecordFormat(kind="text", timestamp_field=None),
    parser=ParserConfig(preparsed=True),
    source=SourceKeyConfig(kind="fixed", fixed_key="bgl"),
    window=WindowConfig(kind="sliding", size=100, step=100, max_events=100),
)

# Thunderbird: `- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2915]: message`.
_TB_HEADER = r"^\S+ (?P<timestamp>\d+) \S+ (?P<node>\S+) \S+ +\d+ \S+ \S+ "
THUNDERBIRD = PipelineConfig(
    name="thunderbird",
    record=RecordFormat(kind="text", text_timestamp_regex=_TB_HEADER),
    parser=ParserConfig(content_regex=_TB_HEADER + r"(?P<content>.*)$"),
    source=SourceKeyConfig(kind="regex", pattern=r"^\S+ \d+ \S+ (\S+) "),
    window=WindowConfig(kind="sliding", size=20, step=20, max_events=20),
)

# OpenStack sequences arrive as JSON records {"instance": uuid, "message": template}.
OPENSTACK = PipelineConfig(
    name="openstack",
    record=RecordFormat(kind="json", message_field="message", source_field="instance",
                        timestamp_field=None),
    parser=ParserConfig(preparsed=True),
    source=SourceKeyConfig(kind="field", default_key=None),
    window=WindowConfig(kind="session", gap_s=_DAY, max_events=512),
)

# Generic JSON logs: {"timestamp": ..., "source": "svc-a", "level": "INFO", "message": "..."}.
JSON_LOGS = PipelineConfig(
    name="json",
    record=RecordFormat(kind="json", source_field="source", timestamp_field="timestamp"),
    source=SourceKeyConfig(kind="field"),
    window=WindowConfig(kind="session", gap_s=60.0, max_events=64),
)

# The demo's synthetic service logs (logprompt.synthetic): one session per request id; a request
# lasts well under a second, so a 5-second gap closes it soon after its last line.
SYNTHETIC = JSON_LOGS.model_copy(update={
    "name": "synthetic", "window": WindowConfig(kind="session", gap_s=5.0, max_events=64)})

PRESETS: dict[str, PipelineConfig] = {
    p.name: p for p in (HDFS, BGL_RAW, BGL_TEMPLATED, THUNDERBIRD, OPENSTACK, JSON_LOGS, SYNTHETIC)
}


def preset(name: str) -> PipelineConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}") from None
