import numpy as np
import pytest

from training.data import LabelBudget, distinct_labelled, sample_labelled
from training.metrics import best_threshold, binary_metrics


def test_budget_size_by_count_and_fraction() -> None:
    assert LabelBudget(fraction=0.01).size(6900) == 69
    assert LabelBudget(count=40, fraction=None).size(10) == 10
    with pytest.raises(ValueError):
        LabelBudget(count=3, fraction=0.5)


def test_stratified_sample_is_reproducible_and_holds_anomalies() -> None:
    labels = [1 if i % 50 == 0 else 0 for i in range(1000)]  # 2% anomalies
    budget = LabelBudget(fraction=0.01, selection="stratified")
    a, b = sample_labelled(labels, budget, 0), sample_labelled(labels, budget, 0)
    assert a == b and len(a) == 10
    assert sum(labels[i] for i in a) == 1  # round(10 * 0.02) = 0, raised to min_anomalies
    assert sample_labelled(labels, budget, 1) != a
    assert len(set(a)) == len(a)


def test_full_budget_takes_every_window() -> None:
    assert sample_labelled([0, 1, 0], LabelBudget(fraction=1.0), 5) == [0, 1, 2]


def test_distinct_labelled_weights_keep_the_duplicate_mass() -> None:
    prompts = ["a", "a", "a", "b"]
    unique, labels, weights = distinct_labelled(prompts, [0, 0, 0, 1])  # type: ignore[arg-type]
    assert unique == ["a", "b"] and labels == [0, 1]
    np.testing.assert_allclose(weights, [1.5, 0.5])


def test_best_threshold_and_metrics() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.4])
    labels = np.array([0, 0, 1, 1, 0])
    thr, f1 = best_threshold(scores, labels)
    assert thr == 0.8 and f1 == 1.0
    m = binary_metrics(scores, labels, 0.3)
    assert m["confusion"] == {"tp": 2, "fp": 1, "fn": 0, "tn": 2}
    assert m["precision"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(2 / 3)
    assert m["pr_auc"] == pytest.approx(1.0)


def test_distinct_selection_draws_distinct_windows_without_labels() -> None:
    keys = [("a",)] * 90 + [("b",), ("c",), ("d",), ("e",), ("f",)] + [("a",)] * 5
    labels = [0] * 100  # never looked at
    budget = LabelBudget(count=3, fraction=None, selection="distinct")
    picked = sample_labelled(labels, budget, 0, keys)
    assert len(picked) == 3 and len({keys[i] for i in picked}) == 3
    assert picked == sample_labelled([1] * 100, budget, 0, keys)
    with pytest.raises(ValueError):
        sample_labelled(labels, budget, 0)


def test_cover_selection_takes_every_kind_of_window_first() -> None:
    # 3 kinds (template sets): {a, b} in many orders, {a} alone, {c}; labels never looked at
    keys = [("a", "b"), ("b", "a"), ("a", "b", "b"), ("b", "b", "a"), ("a", "a", "b")] * 10
    keys += [("a",), ("c", "c")] + [("a", "b")] * 30
    labels = [0] * len(keys)
    for sample in range(5):
        picked = sample_labelled(labels, LabelBudget(count=3, fraction=None, selection="cover"),
                                 sample, keys)
        assert {frozenset(keys[i]) for i in picked} == {frozenset("ab"), frozenset("a"),
                                                         frozenset("c")}
    picked = sample_labelled(labels, LabelBudget(count=6, fraction=None, selection="cover"), 0,
                             keys)
    assert len(picked) == 6 and len({keys[i] for i in picked}) == 6  # then distinct windows
    assert sample_labelled([1] * len(keys), LabelBudget(count=6, fraction=None,
                                                        selection="cover"), 0, keys) == picked
    # more labels than distinct windows (7): all of them, then duplicates, as distinct does
    picked = sample_labelled(labels, LabelBudget(count=60, fraction=None, selection="cover"), 0,
                             keys)
    assert len(set(picked)) == 60 and len({keys[i] for i in picked}) == 7


def test_config_file_and_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from training.config import load_config

    toml = tmp_path / "c.toml"
    toml.write_text('dataset = "hdfs_2k"\nloss = "ce"\n[label_budget]\ncount = 30\n')
    c = load_config(toml, {"label_sample": 2, "loss": None})
    assert c.label_budget.count == 30 and c.label_budget.fraction is None
    assert c.loss == "ce" and c.label_sample == 2
    c = load_config(toml, {"label_budget.fraction": 0.05})
    assert c.label_budget.fraction == 0.05 and c.label_budget.count is None


def test_defaults_are_the_measured_recipe_and_the_ensemble_flag_overrides(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from training.config import TrainConfig, load_config

    default = TrainConfig()
    assert default.ensemble == 3 and default.ensemble_selection == "validation"
    assert default.label_budget.selection == "cover" and default.loss == "focal"
    toml = tmp_path / "c.toml"
    toml.write_text("ensemble = 5\n")
    assert load_config(toml, {"ensemble": 1}).ensemble == 1
    assert load_config(toml, {"ensemble": None}).ensemble == 5
