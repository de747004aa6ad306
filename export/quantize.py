"""Dynamic int8 quantization (weights int8 ahead of time, activations quantized per batch at
run time) for CPU serving.

The settings were chosen on the HDFS test windows of a trained checkpoint (docs/export.md):

* MatMul only, weights per output channel: the embedding tables (Gather) stay fp32.
* ``reduce_range`` (7-bit weights): on CPUs without VNNI, the u8 x s8 kernels can saturate
  with full-range weights; 7 bits keep results the same on every serving CPU.
* Two scopes, tried in this order by the exporter (``export.exporter``): ``all`` quantizes
  every MatMul; ``keep_down_projections`` keeps the down-projections fp32 (MatMuls whose
  weight has more rows than columns: in BERT the feed-forward output, 1536 -> 384). Their
  inputs are post-GELU activations with outliers, and one per-tensor activation scale for
  them roughly doubles the probability drift. A model whose scores sit far from its threshold
  keeps its decisions with ``all``, which is about 1.4x faster; one whose scores crowd the
  threshold needs the second scope (measured in docs/export.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal


def down_projections(model_path: Path) -> list[str]:
    """Names of MatMul nodes whose constant weight maps more features to fewer."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2:
            continue
        shape = shapes.get(node.input[1])
        if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
            names.append(node.name)
    return names


Int8Scope = Literal["all", "keep_down_projections"]
INT8_SCOPES: tuple[Int8Scope, ...] = ("all", "keep_down_projections")  # fastest first


def quantize_int8(fp32: Path, int8: Path, scope: Int8Scope = "keep_down_projections"
                  ) -> list[str]:
    """Write ``int8`` from ``fp32`` (see the module docstring); return the MatMuls kept fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = down_projections(fp32) if scope == "keep_down_projections" else []
    # quantize_dynamic logs a pre-processing hint through the root logger on every call.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
            reduce_range=True, op_types_to_quantize=["MatMul"], nodes_to_exclude=keep,
        )
    finally:
        root.setLevel(level)
    return keep
