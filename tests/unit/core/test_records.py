"""Record decoding: good records decode; every bad record raises DecodeError, nothing else."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logprompt.presets import HDFS
from logprompt.records import DecodeError, LogRecord, RecordFormat, decode_record

JSON = RecordFormat(kind="json", source_field="source", max_bytes=4096)
TEXT = RecordFormat(kind="text", max_bytes=4096)


def test_text_line_with_timestamp_regex() -> None:
    line = b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating"
    record = decode_record(line, HDFS.record)
    assert record.message == line.decode()
    assert record.level == "INFO"
    assert record.timestamp == 1226262975.0  # 2008-11-09 20:36:15 UTC


def test_json_record_fields() -> None:
    value = orjson.dumps({"message": "disk full", "timestamp": 1700000000123, "source": "node-1",
                          "level": "ERROR"})
    assert decode_record(value, JSON) == LogRecord("disk full", 1700000000.123, "node-1", "ERROR")


def test_json_iso_timestamp_is_utc() -> None:
    value = orjson.dumps({"message": "x", "timestamp": "2024-01-01T00:00:00"})
    assert decode_record(value, JSON).timestamp == 1704067200.0


@pytest.mark.parametrize(
    ("value", "fmt", "reason"),
    [
        (b"", TEXT, "empty"),
        (None, TEXT, "empty"),
        (b"   \n", TEXT, "empty"),
        (b"x" * 5000, TEXT, "too_long"),
        (b"bad \xff\xfe utf8", TEXT, "invalid_utf8"),
        (b"{not json", JSON, "invalid_json"),
        (b"[1, 2]", JSON, "not_an_object"),
        (b'{"msg": "x"}', JSON, "missing_field"),
        (b'{"message": 3}', JSON, "bad_field_type"),
        (b'{"message": "x", "timestamp": "yesterday"}', JSON, "bad_timestamp"),
        (b'{"message": "x", "timestamp": true}', JSON, "bad_timestamp"),
        (b'{"message": "x", "source": {"a": 1}}', JSON, "bad_field_type"),
    ],
)
def test_bad_records_raise_typed_error(value: bytes | None, fmt: RecordFormat, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_record(value, fmt)
    assert info.value.reason == reason


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([JSON, TEXT, HDFS.record]))
def test_arbitrary_bytes_decode_or_raise_decode_error(value: bytes, fmt: RecordFormat) -> None:
    try:
        record = decode_record(value, fmt)
    except DecodeError as exc:
        assert exc.reason
    else:
        assert record.message.strip()


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-2**62, 2**62)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["message", "timestamp", "source", "level", "x"]), children, max_size=5),
    max_leaves=20,
))
def test_arbitrary_json_decodes_or_raises_decode_error(obj: object) -> None:
    with contextlib.suppress(DecodeError):
        decode_record(orjson.dumps(obj), JSON)
