"""Fast paths added for throughput give the results of the plain code they short-cut."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from logprompt.records import DecodeError, LogRecord, _fixed_width, parse_timestamp
from logprompt.sources import SourceKeyConfig, source_keys

FORMATS = ["%y%m%d %H%M%S", "%Y-%m-%d %H:%M:%S", "%Y%m%d", "%d/%m/%Y:%H:%M:%S",
           "%Y-%m-%dT%H:%M:%SZ", "%H%M%S", "%b %d %H:%M:%S"]


def test_fixed_width_timestamps_read_as_strptime_reads_them() -> None:
    rnd = random.Random(5)
    fast = 0
    for _ in range(20_000):
        fmt = rnd.choice(FORMATS)
        text = datetime(rnd.randint(1000, 9999), rnd.randint(1, 12), rnd.randint(1, 28),
                        rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59)).strftime(fmt)
        if rnd.random() < 0.5:  # damage it: other widths, invalid fields, other separators
            text = "".join(rnd.choice("0123456789 :-/T\t") if rnd.random() < 0.2 else c
                           for c in text)
        try:
            expected: datetime | None = datetime.strptime(text, fmt)
        except ValueError:
            expected = None
        got = _fixed_width(text, fmt)
        if got is not None:
            fast += 1
            assert got == expected, (text, fmt)
    assert fast > 5_000  # the fast path is really taken


def test_parse_timestamp_values_and_errors() -> None:
    assert parse_timestamp("081109 203615", "%y%m%d %H%M%S") == datetime(
        2008, 11, 9, 20, 36, 15, tzinfo=UTC).timestamp()
    assert parse_timestamp("690101 000000", "%y%m%d %H%M%S") == datetime(
        1969, 1, 1, tzinfo=UTC).timestamp()
    short = "81109 203615"  # not zero-padded: strptime decides how to read it
    assert parse_timestamp(short, "%y%m%d %H%M%S") == datetime.strptime(
        short, "%y%m%d %H%M%S").replace(tzinfo=UTC).timestamp()
    with pytest.raises(DecodeError):
        parse_timestamp("081339 203615", "%y%m%d %H%M%S")


def _reference_keys(message: str, config: SourceKeyConfig) -> list[str]:
    """The plain loop that source_keys' findall path replaces."""
    assert config.pattern is not None
    regex = re.compile(config.pattern)
    keys: list[str] = []
    for match in regex.finditer(message):
        key = match.group(1) if regex.groups else match.group(0)
        if key not in keys:
            keys.append(key)
        if len(keys) >= config.max_keys_per_record:
            break
    keys = [k[: config.max_key_length] for k in keys]
    if not keys and config.default_key is not None:
        return [config.default_key]
    return keys


@pytest.mark.parametrize("config", [
    SourceKeyConfig(kind="regex", pattern=r"(blk_-?\d+)", default_key=None),
    SourceKeyConfig(kind="regex", pattern=r"blk_-?\d+", max_keys_per_record=2),
    SourceKeyConfig(kind="regex", pattern=r"(blk)_(-?\d+)", max_key_length=5),
    SourceKeyConfig(kind="regex", pattern=r"k\d", max_keys_per_record=0),
])
def test_regex_source_keys_equal_the_plain_loop(config: SourceKeyConfig) -> None:
    rnd = random.Random(9)
    for _ in range(2000):
        message = " ".join(rnd.choice(["blk_1", "blk_-22", "blk_1", "k1", "k2", "x", "blk_333333"])
                           for _ in range(rnd.randint(0, 8)))
        record = LogRecord(message=message)
        assert source_keys(record, config) == _reference_keys(message, config), message
