"""The training loop: few-shot sample, prompt-tuning with focal loss (or cross-entropy),
checkpoint and threshold chosen on validation F1, test scored once at the end.

Resumable: with ``resumable`` set, ``<output>/state/`` holds the current weights, the best
weights, the optimizer and scheduler, and the step; :func:`train` with ``resume=<output>``
continues from there with the same data order (dropout randomness is not restored).

Ensembles (``ensemble`` = K > 1): members are trained one after the other, member k exactly as
a single run with seed ``seed + k`` would be (a test checks it), each with its own state
directory (``state/``, ``state-2/``, ...); the members to serve are chosen on validation
(:mod:`training.ensemble`) and assembled into one model (:func:`training.model.assemble_ensemble`).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from logprompt.datasets import Dataset, LabelledWindow, load_dataset
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import PROMPT_TEMPLATES, EncodedPrompt, PromptConfig, PromptEncoder, pad_batch
from training.config import TrainConfig
from training.data import describe_sample, distinct_labelled, encode_windows, sample_labelled, window_keys
from training.ensemble import select_members
from training.losses import loss_fn
from training.metrics import best_threshold, binary_metrics
from training.model import (
    PromptModel,
    assemble_ensemble,
    build_model,
    default_base_model,
    save_checkpoint,
)
from training.partial import LowerLayerCache
from training.scoring import score_prompts

log = logging.getLogger(__name__)

# (base model, frozen layers, mode) -> prompt -> cached hidden states, shared by the runs of
# one process (bench/training/run_table.py trains many models on one data set).
_SHARED_LOWER: dict[tuple[str, int, str], dict[EncodedPrompt, torch.Tensor]] = {}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def prompt_config(config: TrainConfig) -> PromptConfig:
    return PromptConfig(template=config.prompt_template, max_length=config.max_length,
                        sem_share=config.sem_share, soft_tokens=config.soft_tokens,
                        sequence_ids=config.sequence_ids)


def soft_token_names(config: TrainConfig) -> list[str]:
    if "{soft}" not in PROMPT_TEMPLATES[config.prompt_template]:
        return []
    return [f"[unused{i}]" for i in range(config.soft_tokens)]


@dataclass
class Prepared:
    """Everything a run needs before the first step (shared by train and evaluate)."""

    dataset: Dataset
    pipeline: PipelineConfig
    model: PromptModel
    encoder: PromptEncoder
    picked: list[int]
    base_model: str

    @property
    def labelled(self) -> list[LabelledWindow]:
        return [self.dataset.windows["train"][i] for i in self.picked]


def prepare(config: TrainConfig, dataset: Dataset | None = None) -> Prepared:
    dataset = dataset or load_dataset(config.dataset, config.datasets_root)
    pipeline = dataset.config.model_copy(update={"prompt": prompt_config(config)})
    base = config.base_model or default_base_model()
    model, tokenizer = build_model(base, config.mode, config.verbalizer, soft_token_names(config))
    encoder = PromptEncoder(tokenizer, pipeline.prompt, dataset.table.ids())
    labels = [w.label for w in dataset.windows["train"]]
    picked = sample_labelled(labels, config.label_budget, config.label_sample,
                             window_keys(dataset.windows["train"]))
    return Prepared(dataset, pipeline, model, encoder, picked, base)


def _batch(prompts: list[EncodedPrompt], pad_id: int, device: torch.device
           ) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).to(device) for k, v in pad_batch(prompts, pad_id).items()}


def dataset_source(name: str) -> str:
    return str(Path(name).resolve()) if name.endswith(".toml") else name


@dataclass
class Member:
    """One trained member: its model with the best validation weights loaded."""

    model: PromptModel
    seed: int
    threshold: float
    val_f1: float
    history: list[dict[str, Any]]
    steps: int
    seen: int
    train_time: float


@dataclass
class _Run:
    """What every member of one training run shares."""

    config: TrainConfig
    prep: Prepared
    device: torch.device
    train_prompts: list[EncodedPrompt]
    train_y: torch.Tensor
    train_w: torch.Tensor
    val_prompts: list[EncodedPrompt]
    val_y: np.ndarray
    n_lower: int | None  # frozen lower layers (cached), None: all layers train
    total: int
    eval_every: int

    def cache(self, model: PromptModel) -> LowerLayerCache | None:
        if self.n_lower is None:
            return None
        store = _SHARED_LOWER.setdefault((self.prep.base_model, self.n_lower,
                                          self.config.mode), {})
        return LowerLayerCache(model, self.n_lower, self.prep.encoder.pad_id, self.device,
                               self.config.eval_batch_size, store)

    def scores(self, model: PromptModel, prompts: list[EncodedPrompt]) -> np.ndarray:
        cache = self.cache(model)
        if cache is not None:
            return cache.score(prompts)
        return score_prompts(model, prompts, self.prep.encoder.pad_id,
                             self.config.eval_batch_size, self.device)


def train(config: TrainConfig, dataset: Dataset | None = None, resume: Path | None = None
          ) -> Path:
    """Train (``config.ensemble`` members, one after the other), choose the checkpoint and
    threshold on validation, write the checkpoint directory ``config.output`` (see
    :mod:`training.model`) and return its path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    log.info("training on %s (%s)", device, torch.cuda.get_device_name(device)
             if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads")
    t0 = time.perf_counter()
    prep = prepare(config, dataset)
    prep.model.to(device)
    run = _plan(config, prep, device)
    sample_info = describe_sample([w.label for w in prep.dataset.windows["train"]], prep.picked)
    log.info("labelled windows: %s", sample_info)
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(config.model_dump_json(indent=2))

    members = []
    for k in range(config.ensemble):
        seed = config.seed + k
        if k == 0:
            model = prep.model
        else:  # the same start as a single run with this seed: seed, then build
            torch.manual_seed(seed)
            model = build_model(prep.base_model, config.mode, config.verbalizer,
                                soft_token_names(config))[0]
        state = out / ("state" if k == 0 else f"state-{k + 1}")
        resume_state = None
        if resume is not None:
            resume_state = Path(resume) / state.name
            if k > 0 and not resume_state.exists():
                resume_state = None  # this member had not started
        label = f"member {k + 1}/{config.ensemble}" if config.ensemble > 1 else "train"
        members.append(_fit(run, model.to(device), seed, state, resume_state, label))

    chosen: tuple[int, ...] = (0,)
    model = members[0].model
    if len(members) > 1:
        assert run.n_lower is not None
        chosen = select_members([run.scores(m.model, run.val_prompts) for m in members],
                                run.val_y, config.ensemble_selection)
        model = assemble_ensemble([members[i].model for i in chosen], run.n_lower)
        for k, m in enumerate(members):
            log.info("member seed %d: val F1 %.4f%s", m.seed, m.val_f1,
                     "" if k in chosen else " (left out)")
    ts = time.perf_counter()
    val_scores = run.scores(model, run.val_prompts)
    # The served model's own best threshold (for a single member: the one training chose).
    best_thr = best_threshold(val_scores, run.val_y)[0]
    metrics: dict[str, Any] = {"val": binary_metrics(val_scores, run.val_y, best_thr)}
    arrays = {"val_scores": val_scores, "val_labels": run.val_y}
    if config.evaluate_test:
        windows = prep.dataset.windows
        test_prompts = encode_windows(prep.encoder, windows["test"])
        test_y = np.array([w.label for w in windows["test"]])
        test_scores = run.scores(model, test_prompts)
        metrics["test"] = binary_metrics(test_scores, test_y, best_thr)
        arrays |= {"test_scores": test_scores, "test_labels": test_y}
    score_time = time.perf_counter() - ts
    train_time = sum(m.train_time for m in members)
    seen = sum(m.seen for m in members)
    metrics["timing"] = {
        "train_seconds": round(train_time, 2), "steps": sum(m.steps for m in members),
        "windows_per_s": round(seen / max(train_time, 1e-9), 2),
        "final_scoring_seconds": round(score_time, 2),
        "total_seconds": round(time.perf_counter() - t0, 2), "device": str(device)}
    metrics["history"] = members[0].history
    if len(members) > 1:
        metrics["members"] = [{"seed": m.seed, "val_f1": m.val_f1, "threshold": m.threshold,
                               "served": k in chosen, "history": m.history}
                              for k, m in enumerate(members)]
    np.savez(out / "scores.npz", **arrays)  # type: ignore[arg-type]
    save_checkpoint(out, model, base_model=prep.base_model, pipeline=prep.pipeline,
                    table=prep.dataset.table, meta={
                        "train_config": json.loads(config.model_dump_json()),
                        "threshold": best_thr, "dataset": prep.dataset.name,
                        # What load_dataset needs to rebuild the windows: a preset name, or
                        # the absolute path of a data set spec (your own logs).
                        "dataset_source": dataset_source(config.dataset),
                        "label_budget": {**config.label_budget.model_dump(), **sample_info},
                        "label_sample": config.label_sample, "metrics": metrics})
    log.info("checkpoint %s: val F1 %.4f%s", out, metrics["val"]["f1"],
             f", test F1 {metrics['test']['f1']:.4f}" if "test" in metrics else "")
    return out


def _plan(config: TrainConfig, prep: Prepared, device: torch.device) -> _Run:
    """Encode the labelled and validation windows, size the schedule, fill the cache."""
    train_prompts, train_labels_d, weights = distinct_labelled(
        encode_windows(prep.encoder, prep.labelled), [w.label for w in prep.labelled])
    log.info("%d labelled windows, %d distinct prompts", len(prep.labelled), len(train_prompts))
    val_prompts = encode_windows(prep.encoder, prep.dataset.windows["val"])
    n = len(train_prompts)
    total = max(config.epochs * math.ceil(n / config.batch_size), config.min_steps)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    n_layers = prep.model.encoder.config.num_hidden_layers
    n_lower = None
    if config.train_layers is not None and config.mode == "full" \
            and config.train_layers < n_layers:
        n_lower = n_layers - config.train_layers
    if config.ensemble > 1 and n_lower is None:
        raise ValueError("an ensemble shares frozen lower layers: it needs mode 'full' and "
                         f"train_layers < {n_layers}")
    run = _Run(config, prep, device, train_prompts, torch.tensor(train_labels_d),
               torch.tensor(weights, dtype=torch.float32), val_prompts,
               np.array([w.label for w in prep.dataset.windows["val"]]), n_lower, total,
               # About 8 validations per run: validation F1 swings between checkpoints
               # (0.52 -> 0.82 -> 0.65 on BGL at one per epoch), so the best is worth finding.
               config.eval_every or max(1, math.ceil(total / 8)))
    if n_lower is not None:
        prep.model.freeze_lower(n_lower)
        cache = run.cache(prep.model)
        assert cache is not None
        tc = time.perf_counter()
        cache.fill(train_prompts + val_prompts)
        log.info("cached layers 1-%d for %d prompts in %.1f s", n_lower,
                 len(_SHARED_LOWER[(prep.base_model, n_lower, config.mode)]),
                 time.perf_counter() - tc)
    return run


def _fit(run: _Run, model: PromptModel, seed: int, state_dir: Path, resume: Path | None,
         label: str) -> Member:
    """Train one member; return it with its best validation weights loaded."""
    config, device = run.config, run.device
    if run.n_lower is not None:
        model.freeze_lower(run.n_lower)
    cache = run.cache(model)

    def logits_of(prompts: list[EncodedPrompt]) -> torch.Tensor:
        if cache is not None:
            return cache.logits(prompts)
        return model(**_batch(prompts, run.prep.encoder.pad_id, device))

    encoder_params, head_params = model.trainable_parameters()
    groups: list[dict[str, Any]] = [{"params": head_params, "lr": config.lr_head}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": config.lr_encoder})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    total = run.total
    warmup = int(total * config.warmup)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        return max(0.0, (total - step) / max(total - warmup, 1))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    criterion = loss_fn(config.loss, config.focal_alpha, config.focal_gamma)

    step, best_f1, best_ap, best_thr, stale, stopped = 0, -1.0, -1.0, 0.5, 0, False
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    if resume is not None:
        meta = json.loads((resume / "trainer.json").read_text())
        model.load_state_dict(load_file(str(resume / "model.safetensors")))
        opt = torch.load(resume / "optimizer.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
        best_state = load_file(str(resume / "best.safetensors"))
        step, best_f1, best_ap = meta["step"], meta["best_f1"], meta["best_ap"]
        best_thr, stale, history = meta["best_threshold"], meta["stale"], meta["history"]
        stopped = meta.get("early_stopped", False)
        log.info("resumed from %s at step %d (best val F1 %.4f)", resume, step, best_f1)

    def save() -> None:
        if config.resumable:
            _save_state(state_dir, model, optimizer, scheduler, best_state, {
                "step": step, "best_f1": best_f1, "best_ap": best_ap, "early_stopped": stopped,
                "best_threshold": best_thr, "stale": stale, "history": history})

    n = len(run.train_prompts)
    per_epoch = math.ceil(n / config.batch_size)
    model.train()
    seen, train_time = 0, 0.0
    bar = tqdm(total=total, initial=step, disable=not config.progress, desc=label,
               unit="step", dynamic_ncols=True)
    while step < total and not stopped:
        epoch, within = divmod(step, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(
            seed * 100_003 + epoch))
        idx = order[within * config.batch_size : (within + 1) * config.batch_size].tolist()
        ts = time.perf_counter()
        losses = criterion(logits_of([run.train_prompts[i] for i in idx]),
                           run.train_y[idx].to(device))
        loss = (losses * run.train_w[idx].to(device)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder_params + head_params, config.clip)
        optimizer.step()
        scheduler.step()
        step += 1
        train_time += time.perf_counter() - ts
        seen += len(idx)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", win_s=f"{seen / max(train_time, 1e-9):.1f}")
        if step % run.eval_every == 0 or step == total:
            scores = run.scores(model, run.val_prompts)
            thr, f1 = best_threshold(scores, run.val_y)
            ap = binary_metrics(scores, run.val_y, thr)["pr_auc"]
            history.append({"step": step, "loss": float(loss.item()), "val_f1": f1,
                            "val_pr_auc": ap, "threshold": thr})
            bar.write(f"step {step}/{total}: val F1 {f1:.4f} PR-AUC {ap:.4f} thr {thr:.4g}")
            if f1 > best_f1 or (f1 == best_f1 and ap > best_ap):
                best_f1, best_ap, best_thr, stale = f1, ap, thr, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            stopped = config.patience is not None and stale >= config.patience
            save()
            if stopped:
                log.info("early stop at step %d: no better val F1 in %d evaluations", step, stale)
    bar.close()
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return Member(model, seed, best_thr, best_f1, history, step, seen, train_time)


def _save_state(path: Path, model: PromptModel, optimizer: torch.optim.Optimizer,
                scheduler: Any, best: dict[str, torch.Tensor] | None,
                meta: dict[str, Any]) -> None:
    """Write to a temporary directory, then swap, so a crash never leaves half a state."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(tmp / "model.safetensors"))
    if best is not None:
        save_file(copy.copy(best), str(tmp / "best.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               tmp / "optimizer.pt")
    (tmp / "trainer.json").write_text(json.dumps(meta))
    if path.exists():
        old = path.with_name(path.name + ".old")
        path.rename(old)
        tmp.rename(path)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(path)


def tiny_config(output: Path, dataset: str = "hdfs_2k", **overrides: Any) -> TrainConfig:
    """A config that trains a (useless) checkpoint in seconds, for other parts' tests:
    ``train(tiny_config(tmp_path / "ckpt"))`` (needs ../shared/datasets for hdfs_2k; pass
    ``dataset=`` an in-memory :class:`~logprompt.datasets.Dataset` to ``train`` otherwise)."""
    base: dict[str, Any] = {
        "dataset": dataset, "output": output, "max_length": 64, "batch_size": 4,
        "max_steps": 3, "eval_every": 3, "label_budget": {"count": 24, "fraction": None},
        "resumable": False, "progress": False, "ensemble": 1}
    return TrainConfig.model_validate(base | overrides)
