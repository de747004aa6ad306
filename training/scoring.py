"""Batch scoring of prompts with a :class:`~training.model.PromptModel`, duplicates scored once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from logprompt.prompts import EncodedPrompt, pad_batch
from training.data import distinct
from training.model import PromptModel


@torch.no_grad()
def score_prompts(model: PromptModel, prompts: Sequence[EncodedPrompt], pad_id: int,
                  batch_size: int = 64, device: str | torch.device = "cpu",
                  cache: dict[EncodedPrompt, float] | None = None) -> np.ndarray:
    """Anomaly probability ``softmax(logits)[:, 1]`` of each prompt. ``cache`` (prompt ->
    score) is read and filled; pass a fresh one whenever the weights change."""
    if not prompts:
        return np.zeros(0)
    cache = {} if cache is None else cache
    unique, inverse = distinct(prompts)
    todo = [p for p in unique if p not in cache]
    todo.sort(key=lambda p: len(p.input_ids))  # similar lengths per batch: less padding
    was_training = model.training
    model.eval()
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        batch = {k: torch.from_numpy(v).to(device) for k, v in pad_batch(chunk, pad_id).items()}
        probs = torch.softmax(model(**batch).float(), dim=-1)[:, 1].cpu().numpy()
        for p, s in zip(chunk, probs, strict=True):
            cache[p] = float(s)
    model.train(was_training)
    scores = np.array([cache[p] for p in unique])
    return scores[inverse]
