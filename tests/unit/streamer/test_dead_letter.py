from __future__ import annotations

from logprompt.records import DecodeError
from streamer import dead_letter as dl


def test_headers_and_cut() -> None:
    record = dl.dead_letter(DecodeError("too_long", "70000 bytes > limit"), b"k", b"x" * 100,
                            "logs", 2, 41, 1_700_000_000_000, max_value_bytes=10)
    headers = dict(record.headers)
    assert headers[dl.REASON] == b"too_long"
    assert headers[dl.TOPIC] == b"logs" and headers[dl.PARTITION] == b"2"
    assert headers[dl.OFFSET] == b"41" and headers[dl.TIMESTAMP] == b"1700000000000"
    assert headers[dl.ORIGINAL_BYTES] == b"100"
    assert record.value == b"x" * 10 and record.key == b"k"


def test_small_value_kept_whole_and_empty_value() -> None:
    record = dl.dead_letter(DecodeError("empty", "no value"), None, None, "t", 0, 0, None, 10)
    headers = dict(record.headers)
    assert dl.ORIGINAL_BYTES not in headers and dl.TIMESTAMP not in headers
    assert record.value is None
