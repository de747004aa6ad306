"""Training with the lower encoder layers frozen (``TrainConfig.train_layers``): their output
for a prompt never changes, so it is computed once per distinct prompt and cached, and every
step and validation pass runs only the top layers and the head. On a 2-core CPU this makes a
run several times cheaper; the model and its forward are unchanged (the frozen layers simply
keep their pretrained weights)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from logprompt.prompts import EncodedPrompt, pad_batch
from training.data import distinct
from training.model import PromptModel


class LowerLayerCache:
    """Distinct prompt -> hidden states (len, hidden) after the frozen lower layers."""

    def __init__(self, model: PromptModel, n_lower: int, pad_id: int,
                 device: torch.device, batch_size: int = 64,
                 store: dict[EncodedPrompt, torch.Tensor] | None = None) -> None:
        self.model, self.n_lower, self.pad_id = model, n_lower, pad_id
        self.device, self.batch_size = device, batch_size
        # ``store`` may be shared by runs whose frozen layers are the same pretrained ones.
        self._hidden: dict[EncodedPrompt, torch.Tensor] = {} if store is None else store

    @torch.no_grad()
    def fill(self, prompts: Sequence[EncodedPrompt]) -> None:
        todo = sorted({p for p in prompts if p not in self._hidden},
                      key=lambda p: len(p.input_ids))
        was = self.model.training
        self.model.eval()
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            b = {k: torch.from_numpy(v).to(self.device)
                 for k, v in pad_batch(chunk, self.pad_id).items()}
            h = self.model.lower_hidden(b["input_ids"], b["attention_mask"],
                                        b["token_type_ids"], self.n_lower).cpu()
            for row, p in enumerate(chunk):
                self._hidden[p] = h[row, : len(p.input_ids)].clone()
        self.model.train(was)

    def batch(self, prompts: Sequence[EncodedPrompt]
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(hidden, input_ids, attention_mask) of these prompts, right-padded."""
        self.fill(prompts)
        arrays = pad_batch(prompts, self.pad_id)
        width = arrays["input_ids"].shape[1]
        hidden = torch.zeros(len(prompts), width, self.model.encoder.config.hidden_size)
        for row, p in enumerate(prompts):
            hidden[row, : len(p.input_ids)] = self._hidden[p]
        return (hidden.to(self.device), torch.from_numpy(arrays["input_ids"]).to(self.device),
                torch.from_numpy(arrays["attention_mask"]).to(self.device))

    def logits(self, prompts: Sequence[EncodedPrompt]) -> torch.Tensor:
        hidden, ids, mask = self.batch(prompts)
        return self.model.upper_logits(hidden, mask, ids, self.n_lower)

    @torch.no_grad()
    def score(self, prompts: Sequence[EncodedPrompt]) -> np.ndarray:
        """Anomaly probability of each prompt, duplicates computed once."""
        unique, inverse = distinct(prompts)
        order = sorted(range(len(unique)), key=lambda i: len(unique[i].input_ids))
        out = np.zeros(len(unique))
        was = self.model.training
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            probs = torch.softmax(self.logits([unique[i] for i in idx]).float(), dim=-1)[:, 1]
            out[idx] = probs.cpu().numpy()
        self.model.train(was)
        return out[inverse]
