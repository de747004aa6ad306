"""Which source (session) a record belongs to: a JSON field, regex captures, or a fixed key."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from logprompt._regex import compiled
from logprompt.records import LogRecord


class SourceKeyConfig(BaseModel):
    """``field``: the record's source field (JSON); ``regex``: every match of ``pattern`` in the
    message (group 1 if any), so one line can feed several sessions (HDFS block ids); ``fixed``:
    one key for all records. A record with no key goes to ``default_key``, or is skipped when
    that is None."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["field", "regex", "fixed"] = "fixed"
    pattern: str | None = None
    fixed_key: str = "all"
    default_key: str | None = "unkeyed"
    max_keys_per_record: int = 16  # bounds fan-out of a hostile line naming thousands of keys
    max_key_length: int = 256


def source_keys(record: LogRecord, config: SourceKeyConfig) -> list[str]:
    """The keys of the windows this record belongs to, in order of appearance, de-duplicated."""
    if config.kind == "fixed":
        return [config.fixed_key]
    if config.kind == "field":
        keys = [record.source] if record.source else []
    else:
        if not config.pattern:
            raise ValueError("source key kind 'regex' needs a pattern")
        regex = compiled(config.pattern)
        if regex.groups <= 1:
            # findall gives group 1 (or the whole match) in C; dict keeps first appearances.
            # The bound is at least one key, as the loop below stops only after adding one.
            found = dict.fromkeys(regex.findall(record.message))
            keys = list(found)[: max(1, config.max_keys_per_record)]
        else:
            keys = _distinct_group1(regex, record.message, config.max_keys_per_record)
    limit = config.max_key_length
    if keys and max(map(len, keys)) > limit:
        keys = [k[:limit] for k in keys]
    if not keys and config.default_key is not None:
        return [config.default_key]
    return keys


def _distinct_group1(regex: re.Pattern[str], message: str, limit: int) -> list[str]:
    keys: list[str] = []
    for match in regex.finditer(message):
        key = match.group(1)
        if key not in keys:
            keys.append(key)
        if len(keys) >= limit:
            break
    return keys
