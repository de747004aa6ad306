"""LogPrompt prompt rendering: a window becomes ``[CLS] <prompt with SEM, SEQ and [MASK]> [SEP]``.

* SEM (semantic tokens): the words of the window's templates, parameters removed, each word once
  in order of first appearance (see :func:`logprompt.parsing.template_words`).
* SEQ (sequential tokens): the template ids of the window's events, in order. With
  ``sequence_ids="hash"`` the id is its 8 hex digits (about 6 word pieces each); with
  ``"index"`` it is the template's 1-based position in the frozen template table written as a
  number, one word piece for the first thousand templates, and ``0`` for a template the table
  does not hold. The index form fits 6x more events into the same length: HDFS sessions (20-30
  events) no longer lose their oldest events to truncation.
* Token types mark what a token is: 0 prompt text (and special tokens), 1 semantic,
  2 sequential, as in the paper's embedding layer.

When a window is too long, SEM and SEQ share what is left of ``max_length`` (``sem_share`` to
SEM, the rest to SEQ; one side's unused budget goes to the other) and each keeps its *most
recent* tokens; the prompt words and the mask are never cut.

Tokenisation uses the ``tokenizers`` library only, so the streamer needs no torch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator
from tokenizers import Tokenizer

from logprompt.parsing import template_words

TYPE_PROMPT, TYPE_SEMANTIC, TYPE_SEQUENTIAL = 0, 1, 2
NUM_TOKEN_TYPES = 3

# The prompt repository of the paper's framework figure, by name. Slots: {sem} {seq} {soft} {mask}.
PROMPT_TEMPLATES: dict[str, str] = {
    "semantic_sequential": "semantic {sem} sequential {seq} it is {mask}",
    "it_is": "{sem} {seq} it is {mask}",
    "normal_or_anomaly": "{sem} {seq} normal or anomaly ? {mask}",
    "soft": "{sem} {seq} {soft} {mask}",
    "semantic_only": "semantic {sem} it is {mask}",
}

_SLOT = re.compile(r"\{(sem|seq|soft|mask)\}")


class PromptConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str = "semantic_sequential"
    max_length: int = 128
    sem_share: float = 0.5
    soft_tokens: int = 2  # pseudo tokens [P] for the {soft} slot, taken from [unusedN] tokens
    # "hash" is the default for bundles written before "index" existed (their manifests lack it).
    sequence_ids: Literal["hash", "index"] = "hash"

    @field_validator("template")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in PROMPT_TEMPLATES:
            raise ValueError(f"unknown prompt template {name!r}; known: {sorted(PROMPT_TEMPLATES)}")
        return name


@dataclass(frozen=True, slots=True)
class EncodedPrompt:
    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    mask_index: int


def semantic_words(templates: Sequence[str]) -> list[str]:
    """Each template word once, in order of first appearance."""
    seen: dict[str, None] = {}
    for template in templates:
        for word in template_words(template):
            seen.setdefault(word, None)
    return list(seen)


def render_text(templates: Sequence[str], template_ids: Sequence[str], config: PromptConfig) -> str:
    """The prompt as readable text (before truncation), for reports and debugging."""
    slots = {
        "sem": " ".join(semantic_words(templates)),
        "seq": " ".join(template_ids),
        "soft": " ".join(["[P]"] * config.soft_tokens),
        "mask": "[MASK]",
    }
    return _SLOT.sub(lambda m: slots[m.group(1)], PROMPT_TEMPLATES[config.template])


UNSEEN_TEMPLATE_INDEX = "0"


class PromptEncoder:
    """Turns (templates, template ids) into token ids with token types, deterministically.

    ``table_ids`` (the frozen table's ``ids()``, in table order) is required when the config's
    ``sequence_ids`` is ``"index"``; it defines each id's number."""

    def __init__(self, tokenizer: Tokenizer, config: PromptConfig,
                 table_ids: Sequence[str] = ()) -> None:
        self.config = config
        if config.sequence_ids == "index" and not table_ids:
            raise ValueError('sequence_ids="index" needs the template table\'s ids')
        self._index = {tid: str(i + 1) for i, tid in enumerate(table_ids)}
        # Padding and truncation are ours to do (see encode and pad_batch), not the tokenizer's.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tok = tokenizer
        self.cls_id = _first_token(tokenizer, ("[CLS]", "<s>"))
        self.sep_id = _first_token(tokenizer, ("[SEP]", "</s>"))
        self.mask_id = _first_token(tokenizer, ("[MASK]", "<mask>"))
        self.pad_id = _first_token(tokenizer, ("[PAD]", "<pad>"))
        self.soft_ids = [
            _first_token(tokenizer, (f"[unused{i}]",)) for i in range(config.soft_tokens)
        ] if "{soft}" in PROMPT_TEMPLATES[config.template] else []
        # The template as a list of parts: literal token ids or slot names.
        self._parts: list[list[int] | str] = []
        pos = 0
        text = PROMPT_TEMPLATES[config.template]
        for match in _SLOT.finditer(text):
            if text[pos : match.start()].strip():
                self._parts.append(self._ids(text[pos : match.start()]))
            self._parts.append(match.group(1))
            pos = match.end()
        if text[pos:].strip():
            self._parts.append(self._ids(text[pos:]))
        fixed = 2 + 1 + len(self.soft_ids)  # [CLS] [SEP] [MASK] and pseudo tokens
        fixed += sum(len(p) for p in self._parts if isinstance(p, list))
        self._budget = config.max_length - fixed
        if self._budget < 2:
            raise ValueError(f"max_length {config.max_length} leaves no room for the window")
        self._has_sem = "sem" in self._parts
        self._has_seq = "seq" in self._parts
        self._word_ids = functools.lru_cache(maxsize=65536)(self._ids)

    @classmethod
    def from_file(cls, tokenizer_json: Path, config: PromptConfig,
                  table_ids: Sequence[str] = ()) -> PromptEncoder:
        return cls(Tokenizer.from_file(str(tokenizer_json)), config, table_ids)

    def sequence_word(self, template_id: str) -> str:
        """How a template id is written in SEQ (see the module docstring)."""
        if self.config.sequence_ids == "hash":
            return template_id
        return self._index.get(template_id, UNSEEN_TEMPLATE_INDEX)

    def _ids(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode(self, templates: Sequence[str], template_ids: Sequence[str]) -> EncodedPrompt:
        sem: list[int] = []
        if self._has_sem:
            for word in semantic_words(templates):
                sem.extend(self._word_ids(word))
        seq: list[int] = []
        if self._has_seq:
            for tid in template_ids:
                seq.extend(self._word_ids(self.sequence_word(tid)))
        sem_budget, seq_budget = self._split_budget(len(sem), len(seq))
        sem = sem[len(sem) - sem_budget :]  # keep the most recent tokens
        seq = seq[len(seq) - seq_budget :]
        ids, types = [self.cls_id], [TYPE_PROMPT]
        mask_index = -1
        for part in self._parts:
            if isinstance(part, list):
                ids.extend(part)
                types.extend([TYPE_PROMPT] * len(part))
            elif part == "sem":
                ids.extend(sem)
                types.extend([TYPE_SEMANTIC] * len(sem))
            elif part == "seq":
                ids.extend(seq)
                types.extend([TYPE_SEQUENTIAL] * len(seq))
            elif part == "soft":
                ids.extend(self.soft_ids)
                types.extend([TYPE_PROMPT] * len(self.soft_ids))
            else:
                mask_index = len(ids)
                ids.append(self.mask_id)
                types.append(TYPE_PROMPT)
        ids.append(self.sep_id)
        types.append(TYPE_PROMPT)
        return EncodedPrompt(tuple(ids), tuple(types), mask_index)

    def _split_budget(self, n_sem: int, n_seq: int) -> tuple[int, int]:
        if n_sem + n_seq <= self._budget:
            return n_sem, n_seq
        sem_budget = int(self._budget * self.config.sem_share) if n_seq else self._budget
        sem_budget = min(n_sem, sem_budget)
        seq_budget = min(n_seq, self._budget - sem_budget)
        sem_budget = min(n_sem, self._budget - seq_budget)  # give back what SEQ left unused
        return sem_budget, seq_budget


def pad_batch(prompts: Sequence[EncodedPrompt], pad_id: int) -> dict[str, np.ndarray]:
    """Right-padded int64 arrays ``input_ids``, ``attention_mask``, ``token_type_ids``."""
    width = max(len(p.input_ids) for p in prompts)
    batch = len(prompts)
    input_ids = np.full((batch, width), pad_id, dtype=np.int64)
    attention = np.zeros((batch, width), dtype=np.int64)
    types = np.zeros((batch, width), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        n = len(prompt.input_ids)
        input_ids[row, :n] = prompt.input_ids
        attention[row, :n] = 1
        types[row, :n] = prompt.token_type_ids
    return {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": types}


def _first_token(tokenizer: Tokenizer, candidates: Sequence[str]) -> int:
    for token in candidates:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    raise ValueError(f"the tokenizer has none of the tokens {list(candidates)}")
