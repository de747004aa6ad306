"""Which members an ensemble serves: chosen on validation F1."""

import numpy as np

from training.ensemble import select_members

LABELS = np.array([0, 0, 0, 0, 1, 1])
GOOD = np.array([0.1, 0.2, 0.1, 0.3, 0.5, 0.6])
ALSO_GOOD = np.array([0.2, 0.1, 0.3, 0.2, 0.4, 0.45])
STUCK = np.array([1.0, 1.0, 0.1, 0.1, 0.0, 0.0])  # ranks normal windows above anomalies


def test_a_stuck_member_is_left_out() -> None:
    assert select_members([GOOD, STUCK, ALSO_GOOD], LABELS) == (0, 2)


def test_ties_go_to_the_larger_subset_and_all_keeps_everyone() -> None:
    assert select_members([GOOD, ALSO_GOOD], LABELS) == (0, 1)
    assert select_members([GOOD, STUCK], LABELS, "all") == (0, 1)
    assert select_members([GOOD], LABELS) == (0,)


def test_a_subset_can_beat_every_member_alone() -> None:
    a = np.array([0.1, 0.6, 0.1, 0.1, 0.5, 0.9])  # one normal window above one anomaly
    b = np.array([0.1, 0.1, 0.6, 0.1, 0.9, 0.5])  # another one, elsewhere
    assert select_members([a, b], LABELS) == (0, 1)
