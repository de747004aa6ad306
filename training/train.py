"""The training loop: few-shot sample, prompt-tuning with focal loss (or cross-entropy),
checkpoint and threshold chosen on validation F1, test scored once at the end.

Resumable: with ``resumable`` set, ``<output>/state/`` holds the current weights, the best
weights, the optimizer and scheduler, and the step; :func:`train` with ``resume=<output>``
continues from there with the same data order (dropout randomness is not restored).
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
from training.losses import loss_fn
from training.metrics import best_threshold, binary_metrics
from training.model import PromptModel, build_model, default_base_model, save_checkpoint
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


def train(config: TrainConfig, dataset: Dataset | None = None, resume: Path | None = None
          ) -> Path:
    """Train, choose the checkpoint and threshold on validation, write the checkpoint
    directory ``config.output`` (see :mod:`training.model`) and return its path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    log.info("training on %s (%s)", device, torch.cuda.get_device_name(device)
             if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads")
    t0 = time.perf_counter()
    prep = prepare(config, dataset)
    model, encoder = prep.model.to(device), prep.encoder
    windows = prep.dataset.windows
    train_labels = [w.label for w in windows["train"]]
    sample_info = describe_sample(train_labels, prep.picked)
    log.info("labelled windows: %s", sample_info)
    train_prompts, train_labels_d, weights = distinct_labelled(
        encode_windows(encoder, prep.labelled), [w.label for w in prep.labelled])
    train_y = torch.tensor(train_labels_d)
    train_w = torch.tensor(weights, dtype=torch.float32)
    log.info("%d labelled windows, %d distinct prompts", len(prep.labelled), len(train_prompts))
    val_prompts = encode_windows(encoder, windows["val"])
    val_y = np.array([w.label for w in windows["val"]])

    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(config.model_dump_json(indent=2))
    n = len(train_prompts)
    per_epoch = math.ceil(n / config.batch_size)
    total = max(config.epochs * per_epoch, config.min_steps)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    # About 8 validations per run: validation F1 swings between checkpoints (0.52 -> 0.82 ->
    # 0.65 on BGL at one per epoch), so the best one is worth looking for.
    eval_every = config.eval_every or max(1, math.ceil(total / 8))

    cache: LowerLayerCache | None = None
    n_layers = model.encoder.config.num_hidden_layers
    if config.train_layers is not None and config.mode == "full" \
            and config.train_layers < n_layers:
        n_lower = n_layers - config.train_layers
        model.freeze_lower(n_lower)
        store = _SHARED_LOWER.setdefault((prep.base_model, n_lower, config.mode), {})
        cache = LowerLayerCache(model, n_lower, encoder.pad_id, device,
                                config.eval_batch_size, store)
        tc = time.perf_counter()
        cache.fill(train_prompts + val_prompts)
        log.info("cached layers 1-%d for %d prompts in %.1f s", n_lower, len(store),
                 time.perf_counter() - tc)

    def logits_of(prompts: list[EncodedPrompt]) -> torch.Tensor:
        if cache is not None:
            return cache.logits(prompts)
        return model(**_batch(prompts, encoder.pad_id, device))

    def scores_of(prompts: list[EncodedPrompt]) -> np.ndarray:
        if cache is not None:
            return cache.score(prompts)
        return score_prompts(model, prompts, encoder.pad_id, config.eval_batch_size, device)

    encoder_params, head_params = model.trainable_parameters()
    groups: list[dict[str, Any]] = [{"params": head_params, "lr": config.lr_head}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": config.lr_encoder})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    warmup = int(total * config.warmup)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        return max(0.0, (total - step) / max(total - warmup, 1))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    criterion = loss_fn(config.loss, config.focal_alpha, config.focal_gamma)

    step, best_f1, best_ap, best_thr, stale = 0, -1.0, -1.0, 0.5, 0
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    state_dir = out / "state"
    if resume is not None:
        rs = Path(resume) / "state"
        meta = json.loads((rs / "trainer.json").read_text())
        model.load_state_dict(load_file(str(rs / "model.safetensors")))
        opt = torch.load(rs / "optimizer.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
        best_state = load_file(str(rs / "best.safetensors"))
        step, best_f1, best_ap = meta["step"], meta["best_f1"], meta["best_ap"]
        best_thr, stale, history = meta["best_threshold"], meta["stale"], meta["history"]
        log.info("resumed from %s at step %d (best val F1 %.4f)", rs, step, best_f1)

    model.train()
    seen, train_time = 0, 0.0
    bar = tqdm(total=total, initial=step, disable=not config.progress, desc="train",
               unit="step", dynamic_ncols=True)
    while step < total:
        epoch, within = divmod(step, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(
            config.seed * 100_003 + epoch))
        idx = order[within * config.batch_size : (within + 1) * config.batch_size].tolist()
        ts = time.perf_counter()
        losses = criterion(logits_of([train_prompts[i] for i in idx]), train_y[idx].to(device))
        loss = (losses * train_w[idx].to(device)).mean()
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
        if step % eval_every == 0 or step == total:
            scores = scores_of(val_prompts)
            thr, f1 = best_threshold(scores, val_y)
            ap = binary_metrics(scores, val_y, thr)["pr_auc"]
            history.append({"step": step, "loss": float(loss.item()), "val_f1": f1,
                            "val_pr_auc": ap, "threshold": thr})
            bar.write(f"step {step}/{total}: val F1 {f1:.4f} PR-AUC {ap:.4f} thr {thr:.4g}")
            if f1 > best_f1 or (f1 == best_f1 and ap > best_ap):
                best_f1, best_ap, best_thr, stale = f1, ap, thr, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            if config.resumable:
                _save_state(state_dir, model, optimizer, scheduler, best_state, {
                    "step": step, "best_f1": best_f1, "best_ap": best_ap,
                    "best_threshold": best_thr, "stale": stale, "history": history})
            if config.patience is not None and stale >= config.patience:
                log.info("early stop at step %d: no better val F1 in %d evaluations", step, stale)
                break
    bar.close()

    assert best_state is not None
    model.load_state_dict(best_state)
    ts = time.perf_counter()
    val_scores = scores_of(val_prompts)
    metrics: dict[str, Any] = {"val": binary_metrics(val_scores, val_y, best_thr)}
    arrays = {"val_scores": val_scores, "val_labels": val_y}
    if config.evaluate_test:
        test_prompts = encode_windows(encoder, windows["test"])
        test_y = np.array([w.label for w in windows["test"]])
        test_scores = scores_of(test_prompts)
        metrics["test"] = binary_metrics(test_scores, test_y, best_thr)
        arrays |= {"test_scores": test_scores, "test_labels": test_y}
    score_time = time.perf_counter() - ts
    metrics["timing"] = {
        "train_seconds": round(train_time, 2), "steps": step, "windows_per_s":
        round(seen / max(train_time, 1e-9), 2), "final_scoring_seconds": round(score_time, 2),
        "total_seconds": round(time.perf_counter() - t0, 2), "device": str(device)}
    metrics["history"] = history
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
        "resumable": False, "progress": False}
    return TrainConfig.model_validate(base | overrides)
