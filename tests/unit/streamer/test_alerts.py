"""The alert schema: content, bounds, JSON round trip."""

from __future__ import annotations

import orjson

from logprompt.alerts import SCHEMA_VERSION, Alert
from logprompt.windows import Event, Position, Window


def _window(n: int = 8) -> Window:
    events = tuple(
        Event("blk_1", f"{i % 3:08x}", f"t{i % 3}", 100.0 + i, Position("logs", i % 2, 10 + i),
              f"line {i}")
        for i in range(n)
    )
    return Window("blk_1", events, "flush")


def test_alert_fields_and_round_trip() -> None:
    window = _window()
    alert = Alert.from_window(window, 0.93, 0.5, "m-1", {"00000000"}, max_raw_lines=3,
                              detected_at=1.0)
    assert alert.alert_id == window.window_id
    assert alert.window_start == 100.0 and alert.window_end == 107.0
    assert alert.raw_lines == ("line 5", "line 6", "line 7")
    assert alert.unseen_templates == ("00000001", "00000002")
    assert [(r.partition, r.first_offset, r.last_offset) for r in alert.records] == [
        (0, 10, 16), (1, 11, 17)]
    data = orjson.loads(alert.to_json())
    assert next(iter(data)) == "schema_version" and data["schema_version"] == SCHEMA_VERSION
    assert Alert.from_json(alert.to_json()) == alert
    assert alert.kafka_key() == b"blk_1"


def test_unknown_fields_are_ignored_and_raw_lines_can_be_off() -> None:
    alert = Alert.from_window(_window(2), 0.7, 0.5, "m", set(), max_raw_lines=0)
    assert alert.raw_lines == ()
    data = orjson.loads(alert.to_json())
    data["added_in_a_later_minor_version"] = True
    assert Alert.from_json(orjson.dumps(data)) == alert
