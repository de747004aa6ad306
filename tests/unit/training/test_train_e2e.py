"""A tiny end-to-end run on synthetic windows: training loop, checkpoint, resume, report."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from logprompt.datasets import RawRecord, build_dataset
from logprompt.presets import preset
from logprompt.windows import Position, WindowConfig
from training.config import TrainConfig
from training.data import LabelBudget
from training.evaluate import evaluate
from training.model import CHECKPOINT_FORMAT, load_checkpoint
from training.train import prepare, train

NORMAL = ["job <*> started on node <*>", "heartbeat from node <*> ok", "job <*> finished"]
ANOMALY = ["kernel panic machine check error on node <*>", "link failure detected"]


def _records(n_windows: int, offset: int, rng: np.random.Generator) -> list[RawRecord]:
    out = []
    for w in range(n_windows):
        bad = rng.random() < 0.25
        for i in range(5):
            template = ANOMALY[i % 2] if bad and i == 2 else NORMAL[(w + i) % 3]
            label = int(bad and i == 2)
            pos = Position("synthetic", 0, offset + len(out))
            out.append(RawRecord(template.encode(), pos, label))
    return out


@pytest.fixture(scope="module")
def tiny_dataset():  # type: ignore[no-untyped-def]
    config = preset("bgl_templated").model_copy(
        update={"window": WindowConfig(kind="sliding", size=5, step=5, max_events=5)})
    rng = np.random.default_rng(7)
    splits = {"train": _records(40, 0, rng), "val": _records(12, 1000, rng),
              "test": _records(12, 2000, rng)}
    return build_dataset("tiny", config, splits)  # type: ignore[arg-type]


def _config(out: Path, **kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = dict(dataset="tiny", output=out, max_length=48, batch_size=4, max_steps=3,
                eval_every=2, label_budget=LabelBudget(count=16, fraction=None),
                progress=False, ensemble=1)
    return TrainConfig(**(base | kw))


def test_label_budget_comes_from_train_only(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prep = prepare(_config(tmp_path), tiny_dataset)
    train_ids = {id(w) for w in tiny_dataset.windows["train"]}
    held_out = {e.position for s in ("val", "test") for w in tiny_dataset.windows[s]
                for e in w.window.events}
    assert len(prep.labelled) == 16
    assert all(id(w) in train_ids and w.split == "train" for w in prep.labelled)
    assert not {e.position for w in prep.labelled for e in w.window.events} & held_out
    assert all(w.window.events[0].position.offset < 1000 for w in prep.labelled)


@pytest.mark.slow
def test_train_checkpoint_resume_and_report(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ckpt"
    path = train(_config(out, max_steps=2), tiny_dataset)
    info = json.loads((path / "checkpoint.json").read_text())
    assert info["format"] == CHECKPOINT_FORMAT
    assert info["label_names"] == ["normal", "anomaly"]
    assert info["label_budget"]["windows"] == 16
    assert {"val", "test"} <= set(info["metrics"])
    for name in ("pipeline.json", "templates.json", "tokenizer.json", "model.safetensors",
                 "encoder_config.json", "train_config.json"):
        assert (path / name).exists(), name
    assert json.loads((path / "state" / "trainer.json").read_text())["step"] == 2

    # Resume to step 3 from the saved state.
    train(_config(out, max_steps=3), tiny_dataset, resume=out)
    state = json.loads((out / "state" / "trainer.json").read_text())
    assert state["step"] == 3 and [h["step"] for h in state["history"]] == [2, 3]

    model, info = load_checkpoint(path)
    ids = torch.tensor([[101, 2009, 2003, info["mask_token_id"], 102, 0]])
    logits = model(ids, (ids > 0).long(), torch.tensor([[0, 1, 2, 0, 0, 0]]))
    assert logits.shape == (1, 2)

    report = evaluate(path, dataset=tiny_dataset)
    assert set(report["results"]) >= {"prompt_model", "logreg_counts", "unseen_templates"}
    assert report["labelled"]["windows"] == 16
    assert (path / "report" / "pr_curves.png").stat().st_size > 0
    assert "F1" in (path / "report" / "report.md").read_text()


@pytest.mark.slow
def test_full_fine_tuning_and_soft_prompt_steps_run(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for mode, template in (("full", "semantic_sequential"), ("soft", "soft")):
        out = train(_config(tmp_path / mode, max_steps=1, train_layers=None, mode=mode,
                            prompt_template=template, resumable=False, evaluate_test=False),
                    tiny_dataset)
        model, info = load_checkpoint(out)
        assert info["train_config"]["mode"] == mode and "test" not in info["metrics"]


@pytest.mark.slow
def test_ensemble_members_are_the_single_runs_of_their_seeds(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    single = [train(_config(tmp_path / f"seed{s}", seed=s, resumable=False), tiny_dataset)
              for s in (3, 4)]
    out = train(_config(tmp_path / "ens", seed=3, ensemble=2, ensemble_selection="all"),
                tiny_dataset)
    info = json.loads((out / "checkpoint.json").read_text())
    assert info["model"]["members"] == 2 and info["model"]["shared_layers"] == 4
    assert [m["seed"] for m in info["metrics"]["members"]] == [3, 4]
    assert (out / "state-2" / "trainer.json").exists()
    # The served score is the mean probability of the two single runs, window by window.
    runs = [np.load(p / "scores.npz") for p in single]
    ens = np.load(out / "scores.npz")
    for split in ("val_scores", "test_scores"):
        np.testing.assert_allclose(ens[split], (runs[0][split] + runs[1][split]) / 2,
                                   atol=1e-5)
    assert not np.allclose(runs[0]["val_scores"], runs[1]["val_scores"])
    # Resuming a finished ensemble trains nothing and gives the same model.
    again = train(_config(tmp_path / "ens", seed=3, ensemble=2, ensemble_selection="all"),
                  tiny_dataset, resume=out)
    np.testing.assert_allclose(np.load(again / "scores.npz")["val_scores"], ens["val_scores"],
                               atol=1e-6)
