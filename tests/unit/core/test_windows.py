"""Window logic as timelines, without Kafka.

Notation in the comments: one column per event, the letter is its key, the number its
event time; ``|`` marks where a window closes.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logprompt.windows import Event, Position, WindowConfig, Windower


def ev(key: str, offset: int, ts: float | None = None, partition: int = 0) -> Event:
    return Event(key, f"t{offset % 3}", f"template {offset % 3}", ts, Position("logs", partition,
                                                                                offset))


def offsets(window) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.position.offset for e in window.events]


def test_sliding_windows_overlap_by_size_minus_step() -> None:
    # key a: 0 1 2 3 4 5 6   size 4, step 2
    #        [0-----3]
    #            [2-----5]
    #                [4-6] (flush: partial, holds the events since the last window)
    windower = Windower(WindowConfig(kind="sliding", size=4, step=2))
    closed = windower.add_all(ev("a", i) for i in range(7))
    assert [offsets(w) for w in closed] == [[0, 1, 2, 3], [2, 3, 4, 5]]
    assert [offsets(w) for w in windower.flush()] == [[4, 5, 6]]
    assert windower.open_keys == 0


def test_sliding_windows_are_per_key_and_flush_skips_emitted_tails() -> None:
    windower = Windower(WindowConfig(kind="sliding", size=2, step=2))
    closed = windower.add_all([ev("a", 0), ev("b", 1), ev("a", 2), ev("b", 3), ev("a", 4)])
    assert [(w.key, offsets(w)) for w in closed] == [("a", [0, 2]), ("b", [1, 3])]
    assert [(w.key, offsets(w)) for w in windower.flush()] == [("a", [4])]


def test_session_closes_on_gap_in_event_time() -> None:
    # key a: t=0 t=10 ........ t=200 (gap 60)   ->  [0, 10] | [200]
    windower = Windower(WindowConfig(kind="session", gap_s=60))
    closed = windower.add_all([ev("a", 0, 0.0), ev("a", 1, 10.0), ev("a", 2, 200.0)])
    assert [offsets(w) for w in closed] == [[0, 1]]
    assert closed[0].close_reason == "gap" and closed[0].closed_by == Position("logs", 0, 2)
    assert [offsets(w) for w in windower.flush()] == [[2]]


def test_watermark_closes_idle_sessions_of_other_keys() -> None:
    # a: t=0 | ; b: t=30, t=100 -> watermark 100 passes a's 0 + 60: a closes when b's t=100 arrives
    windower = Windower(WindowConfig(kind="session", gap_s=60))
    assert windower.add(ev("a", 0, 0.0)) == []
    assert windower.add(ev("b", 1, 30.0)) == []
    closed = windower.add(ev("b", 2, 80.0))
    assert [(w.key, offsets(w)) for w in closed] == [("a", [0])]
    assert windower.open_keys == 1


def test_out_of_order_events_join_open_session_and_late_ones_are_counted() -> None:
    windower = Windower(WindowConfig(kind="session", gap_s=60))
    windower.add_all([ev("a", 0, 100.0), ev("a", 1, 90.0)])  # out of order, same session
    windower.add(ev("b", 2, 500.0))  # watermark 500 closes a
    late = windower.add(ev("c", 3, 10.0))  # c at t=10 is older than watermark - gap
    assert windower.stats.late == 1
    assert [(w.key, offsets(w)) for w in late] == [("c", [3])]  # emitted at once, on its own
    dropping = Windower(WindowConfig(kind="session", gap_s=60, late_policy="drop"))
    dropping.add_all([ev("b", 0, 500.0), ev("c", 1, 10.0)])
    assert dropping.stats.dropped_late == 1 and dropping.open_events == 1


def test_session_max_events_bounds_window_length() -> None:
    windower = Windower(WindowConfig(kind="session", gap_s=60, max_events=3))
    closed = windower.add_all(ev("a", i, float(i)) for i in range(7))
    assert [offsets(w) for w in closed] == [[0, 1, 2], [3, 4, 5]]
    assert all(w.close_reason == "max_events" for w in closed)


def test_open_keys_are_bounded_by_evicting_least_recently_active() -> None:
    windower = Windower(WindowConfig(kind="session", gap_s=1e9, max_open_keys=2))
    windower.add_all([ev("a", 0, 0.0), ev("b", 1, 1.0), ev("a", 2, 2.0)])
    closed = windower.add(ev("c", 3, 3.0))
    assert [(w.key, w.close_reason) for w in closed] == [("b", "evicted")]
    assert windower.open_keys == 2 and windower.stats.evicted == 1


def test_window_knows_kafka_coordinates_and_oldest_needed_offsets() -> None:
    windower = Windower(WindowConfig(kind="session", gap_s=1e9))
    windower.add_all([ev("a", 5, 0.0, partition=0), ev("a", 9, 1.0, partition=1),
                      ev("b", 7, 1.0, partition=0), ev("a", 12, 2.0, partition=1)])
    assert windower.oldest_open_positions() == {("logs", 0): 5, ("logs", 1): 9}
    window = next(w for w in windower.flush() if w.key == "a")
    assert window.offset_ranges() == {("logs", 0): (5, 5), ("logs", 1): (9, 12)}
    assert window.start_time == 0.0 and window.end_time == 2.0


def test_window_id_depends_on_content_not_offsets() -> None:
    w1 = Windower(WindowConfig(kind="session")).add_all([ev("a", 1, 1.0)]) or None
    assert w1 is None
    a = Windower(WindowConfig(kind="sliding", size=1, step=1)).add(ev("a", 1, 1.0))[0]
    moved = Event("a", a.events[0].template_id, a.events[0].template, 1.0, Position("other", 3, 99))
    b = Windower(WindowConfig(kind="sliding", size=1, step=1)).add(moved)[0]
    assert a.window_id == b.window_id
    c = Windower(WindowConfig(kind="sliding", size=1, step=1)).add(ev("b", 1, 1.0))[0]
    assert a.window_id != c.window_id


events_strategy = st.lists(
    st.tuples(st.sampled_from("abcdefgh"), st.floats(0, 1000, allow_nan=False)),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.sampled_from(["sliding", "session"]),
       st.integers(1, 6), st.integers(1, 6), st.integers(1, 4))
def test_every_event_lands_in_its_keys_windows_and_state_stays_bounded(
    raw: list[tuple[str, float]], kind: str, size: int, step: int, max_keys: int
) -> None:
    step = min(step, size)
    config = WindowConfig(kind=kind, size=size, step=step, gap_s=50, max_events=size,  # type: ignore[arg-type]
                          max_open_keys=max_keys)
    windower = Windower(config)
    events = [ev(key, i, ts) for i, (key, ts) in enumerate(raw)]
    windows = []
    for event in events:
        windows.extend(windower.add(event))
        assert windower.open_keys <= max_keys
        assert windower.open_events <= max_keys * size
    windows.extend(windower.flush())
    seen: set[int] = set()
    for window in windows:
        assert 1 <= len(window.events) <= size
        assert all(e.key == window.key for e in window.events)
        in_order = offsets(window)
        assert in_order == sorted(in_order)  # arrival order kept
        seen.update(in_order)
    # Every event is in at least one window (session windows: exactly one).
    assert seen == set(range(len(events)))
    if kind == "session":
        assert sum(len(w.events) for w in windows) == len(events)


def test_snapshot_and_restore_rebuild_the_same_windower() -> None:
    # a: 0 1 2 | 3 4 (size 3, step 3): after the first window, 3 and 4 are open, since_emit 2.
    config = WindowConfig(kind="sliding", size=3, step=3)
    original = Windower(config)
    events = [ev("a", i, float(i)) for i in range(5)]
    original.add_all(events)
    starts = original.open_key_starts()
    assert {k: (p.offset, n) for k, (p, n) in starts.items()} == {"a": (3, 2)}
    rebuilt = Windower(config)
    rebuilt.add_all(e for e in events if e.position.offset >= starts["a"][0].offset)
    rebuilt.restore_since_emit("a", starts["a"][1])
    tail = [ev("a", 5, 5.0), ev("a", 6, 6.0)]
    assert [offsets(w) for w in rebuilt.add_all(tail)] == [offsets(w) for w in original.add_all(tail)]


def test_session_watermark_is_restored_but_never_lowered() -> None:
    windower = Windower(WindowConfig(kind="session", gap_s=10))
    assert windower.max_event_time is None
    windower.add(ev("a", 0, 50.0))
    windower.restore_max_event_time(100.0)
    windower.restore_max_event_time(20.0)
    assert windower.max_event_time == 100.0
    assert [offsets(w) for w in windower.add(ev("b", 1, 100.0))] == [[0]]  # a expired at 60
