"""Dead-letter records: an undecodable input record, its reason and where it came from.

The value is the original value (cut to ``max_value_bytes``, with the original size in a
header, so a 10 MB line cannot block the transaction); the key is the original key. Headers:

- ``logprompt.error.reason``: the :class:`~logprompt.records.DecodeError` reason code
- ``logprompt.error.detail``: a human-readable explanation
- ``logprompt.source.topic`` / ``.partition`` / ``.offset``: the original record
- ``logprompt.source.timestamp``: its Kafka timestamp in epoch milliseconds
- ``logprompt.value.original_bytes``: present when the value was cut
"""

from __future__ import annotations

from dataclasses import dataclass

from logprompt.records import DecodeError

Header = tuple[str, str | bytes | None]

REASON = "logprompt.error.reason"
DETAIL = "logprompt.error.detail"
TOPIC = "logprompt.source.topic"
PARTITION = "logprompt.source.partition"
OFFSET = "logprompt.source.offset"
TIMESTAMP = "logprompt.source.timestamp"
ORIGINAL_BYTES = "logprompt.value.original_bytes"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[Header]


def dead_letter(error: DecodeError, key: bytes | None, value: bytes | None, topic: str,
                partition: int, offset: int, timestamp_ms: int | None,
                max_value_bytes: int) -> DeadLetter:
    headers: list[Header] = [
        (REASON, error.reason.encode()),
        (DETAIL, error.detail[:1000].encode("utf-8", "replace")),
        (TOPIC, topic.encode()),
        (PARTITION, str(partition).encode()),
        (OFFSET, str(offset).encode()),
    ]
    if timestamp_ms is not None:
        headers.append((TIMESTAMP, str(timestamp_ms).encode()))
    if value is not None and len(value) > max_value_bytes:
        headers.append((ORIGINAL_BYTES, str(len(value)).encode()))
        value = value[:max_value_bytes]
    return DeadLetter(key, value, headers)
