"""Decoding raw Kafka record values into log records.

Every way a record can be unusable (invalid UTF-8, broken JSON, missing fields, an over-long
line, an empty value) raises one typed error, :class:`DecodeError`, whose ``reason`` is a short
machine-readable code and whose message is for people. Callers send such records to the
dead-letter topic; nothing else is ever raised for bad input.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from logprompt._regex import compiled

DecodeReason = Literal[
    "empty", "too_long", "invalid_utf8", "invalid_json", "not_an_object", "missing_field",
    "bad_field_type", "bad_timestamp",
]


class DecodeError(ValueError):
    """A record that cannot become a :class:`LogRecord`. ``reason`` is one of DecodeReason."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: DecodeReason = reason
        self.detail = detail


class RecordFormat(BaseModel):
    """How a record's bytes are read. ``kind='text'``: the whole value is the message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["text", "json"] = "text"
    message_field: str = "message"
    timestamp_field: str | None = "timestamp"
    source_field: str | None = None
    level_field: str | None = "level"
    timestamp_required: bool = False
    max_bytes: int = 64 * 1024  # longer records are refused, never truncated silently
    # Text lines: a regex whose named groups `timestamp` (and optionally `level`) are read.
    text_timestamp_regex: str | None = None
    text_timestamp_format: str | None = None  # strptime format; None: float epoch seconds


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One decoded log line. ``timestamp`` is event time in epoch seconds when known."""

    message: str
    timestamp: float | None = None
    source: str | None = None
    level: str | None = None


def decode_record(value: bytes | None, fmt: RecordFormat) -> LogRecord:
    """Decode one record value, or raise :class:`DecodeError` saying why it is unusable."""
    if not value:
        raise DecodeError("empty", "the record has no value")
    if len(value) > fmt.max_bytes:
        raise DecodeError("too_long", f"{len(value)} bytes > limit {fmt.max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid_utf8", f"byte {exc.start}: {exc.reason}") from None
    if fmt.kind == "text":
        return _decode_text(text.rstrip("\r\n"), fmt)
    return _decode_json(value, fmt)


def _decode_text(line: str, fmt: RecordFormat) -> LogRecord:
    if not line or line.isspace():  # = not line.strip(), without building a copy
        raise DecodeError("empty", "the line is blank")
    timestamp = None
    level = None
    if fmt.text_timestamp_regex:
        regex = compiled(fmt.text_timestamp_regex)
        match = regex.search(line)
        if match is None:
            if fmt.timestamp_required:
                raise DecodeError("bad_timestamp", "no timestamp in the line")
        else:
            timestamp = parse_timestamp(match.group("timestamp"), fmt.text_timestamp_format)
            if "level" in regex.groupindex:
                level = match.group("level")
    return LogRecord(message=line, timestamp=timestamp, level=level)


def _decode_json(value: bytes, fmt: RecordFormat) -> LogRecord:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("invalid_json", str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise DecodeError("not_an_object", f"top level is {type(obj).__name__}, not an object")
    message = obj.get(fmt.message_field)
    if message is None:
        raise DecodeError("missing_field", f"no '{fmt.message_field}' field")
    if not isinstance(message, str):
        raise DecodeError("bad_field_type", f"'{fmt.message_field}' is not a string")
    if not message.strip():
        raise DecodeError("empty", f"'{fmt.message_field}' is blank")
    timestamp = None
    if fmt.timestamp_field is not None:
        raw_ts = obj.get(fmt.timestamp_field)
        if raw_ts is None:
            if fmt.timestamp_required:
                raise DecodeError("missing_field", f"no '{fmt.timestamp_field}' field")
        else:
            timestamp = _json_timestamp(raw_ts, fmt)
    return LogRecord(
        message=message,
        timestamp=timestamp,
        source=_optional_str(obj, fmt.source_field),
        level=_optional_str(obj, fmt.level_field),
    )


def _optional_str(obj: dict[str, Any], field: str | None) -> str | None:
    if field is None or field not in obj or obj[field] is None:
        return None
    value = obj[field]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise DecodeError("bad_field_type", f"'{field}' is not a string or number")


def _json_timestamp(raw: Any, fmt: RecordFormat) -> float:
    if isinstance(raw, bool):
        raise DecodeError("bad_timestamp", f"'{fmt.timestamp_field}' is a boolean")
    if isinstance(raw, int | float):
        # Epoch milliseconds are common in JSON logs; seconds would be before 1973 at 1e11.
        return float(raw) / 1000.0 if raw > 1e11 else float(raw)
    if isinstance(raw, str):
        return parse_timestamp(raw, None)
    raise DecodeError("bad_timestamp", f"'{fmt.timestamp_field}' has type {type(raw).__name__}")


@functools.lru_cache(maxsize=65536)  # log timestamps repeat (second resolution); strptime is slow
def parse_timestamp(text: str, strptime_format: str | None) -> float:
    """Epoch seconds from a timestamp string: a strptime format, ISO 8601, or a number."""
    try:
        if strptime_format:
            parsed = _fixed_width(text, strptime_format) or datetime.strptime(text, strptime_format)
        else:
            try:
                return float(text)
            except ValueError:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # Times without a zone are read as UTC, so every consumer computes the same instant.
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise DecodeError("bad_timestamp", f"cannot read timestamp {text[:64]!r}: {exc}") from None


# strptime costs ~10 us, paid once per distinct timestamp (a replay of old logs has many). For a
# format made only of %Y %y %m %d %H %M %S and literal characters, a text with exactly two ASCII
# digits per field (four for %Y) forming a valid date is read directly: strptime reads such a
# text the same way (for valid values its regex alternatives take two digits first). Anything
# else (other widths, invalid dates, other fields) goes to strptime, which decides.
_FIELDS = {"Y": r"(\d{4})", "y": r"(\d{2})", "m": r"(\d{2})", "d": r"(\d{2})", "H": r"(\d{2})",
           "M": r"(\d{2})", "S": r"(\d{2})"}


@functools.lru_cache(maxsize=64)
def _fixed_width_plan(strptime_format: str) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
    """(regex, field letters) for a numeric zero-padded format; None when it has other fields."""
    pattern, fields, i = [], [], 0
    while i < len(strptime_format):
        char = strptime_format[i]
        if char == "%":
            field = strptime_format[i + 1: i + 2]
            if field not in _FIELDS or field in fields:
                return None
            pattern.append(_FIELDS[field])
            fields.append(field)
            i += 2
        else:
            # Exactly this character: a subset of what strptime accepts there (it matches
            # whitespace as \s+ and letters case-insensitively).
            pattern.append(re.escape(char))
            i += 1
    return re.compile("".join(pattern), re.ASCII), tuple(fields)


def _fixed_width(text: str, strptime_format: str) -> datetime | None:
    plan = _fixed_width_plan(strptime_format)
    if plan is None:
        return None
    regex, fields = plan
    match = regex.fullmatch(text)
    if match is None:
        return None
    values = dict(zip(fields, map(int, match.groups()), strict=True))
    year = values.get("Y", 1900)
    if "y" in values:
        year = values["y"] + (2000 if values["y"] <= 68 else 1900)
    try:
        return datetime(year, values.get("m", 1), values.get("d", 1), values.get("H", 0),
                        values.get("M", 0), values.get("S", 0))
    except ValueError:
        return None
