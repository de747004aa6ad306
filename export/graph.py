"""The serving graph: the trained model plus its softmax, exported once to ONNX.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript tracer. It exports this
BERT-style model at opset 17 without graph breaks, its output is what ONNX Runtime's transformer
fusions recognise, and the trace is checked against PyTorch on real windows afterwards
(:mod:`export.validate`), so the batch and sequence axes are proven dynamic, not assumed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from logprompt.bundle import DYNAMIC_AXES, GRAPH_INPUTS, GRAPH_OUTPUTS

DEFAULT_OPSET = 17
MIN_OPSET = 17
EXPORTER = "torchscript"


class ServingGraph(nn.Module):
    """``(input_ids, attention_mask, token_type_ids) -> (logits, anomaly_probability)``.

    The probability is computed inside the graph so that serving does no torch work."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(input_ids, attention_mask, token_type_ids)
        return logits, torch.softmax(logits.float(), dim=-1)[:, 1]


def dynamic_axes() -> dict[str, dict[int, str]]:
    """torch.onnx's dynamic_axes, derived from the one declaration in :mod:`logprompt.bundle`."""
    return {
        name: {i: axis for i, axis in enumerate(axes) if axis in DYNAMIC_AXES}
        for name, axes in (GRAPH_INPUTS | GRAPH_OUTPUTS).items()
    }


def export_graph(model: nn.Module, sample: dict[str, np.ndarray], path: Path,
                 opset: int = DEFAULT_OPSET) -> None:
    """Trace ``model`` wrapped in :class:`ServingGraph` on ``sample`` (a padded batch from
    :func:`logprompt.prompts.pad_batch`) and write the fp32 ONNX graph to ``path``."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} < {MIN_OPSET}")
    graph = ServingGraph(model).eval()
    args = tuple(torch.from_numpy(sample[name]) for name in GRAPH_INPUTS)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The legacy-exporter deprecation notice and tracer chatter are expected here; the
        # validation step is what proves the trace right.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, args, str(path),
            input_names=list(GRAPH_INPUTS), output_names=list(GRAPH_OUTPUTS),
            dynamic_axes=dynamic_axes(), opset_version=opset, do_constant_folding=True,
            dynamo=False,
        )
