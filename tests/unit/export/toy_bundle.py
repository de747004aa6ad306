"""A small valid bundle built without torch: a hand-made ONNX graph with the serving signature,
the tiny in-memory tokenizer, and a manifest, so loader tests run in well under a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from logprompt.bundle import (
    GRAPH_INPUTS,
    MODEL_FILES,
    TOKENIZER_FILE,
    BundleManifest,
    FileEntry,
    Fp32Check,
    GraphInfo,
    Int8Check,
    TrainingInfo,
    ValidationReport,
    Verbalizer,
    file_sha256,
    write_manifest,
)
from logprompt.parsing import TemplateTable
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import PromptEncoder
from tests.unit.core.tokenizer_fixture import tiny_tokenizer

TEMPLATES = ("Receiving block <*> src <*> dest <*>", "PacketResponder <*> for block <*> terminating",
             "Disk failure on node <*>")


def toy_probability(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """What the toy graph computes: sigmoid(0.01 * sum of real token ids - 1)."""
    x = (input_ids * attention_mask).sum(axis=1).astype(np.float32) * 0.01 - 1.0
    return 1.0 / (1.0 + np.exp(-x))


def toy_graph() -> onnx.ModelProto:
    const = [
        numpy_helper.from_array(np.array(0.01, dtype=np.float32), "scale"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Mul", ["input_ids", "attention_mask"], ["kept"]),
        helper.make_node("Mul", ["token_type_ids", "attention_mask"], ["types"]),  # unused
        helper.make_node("ReduceSum", ["kept", "axis1"], ["total"], keepdims=1),
        helper.make_node("Cast", ["total"], ["total_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["total_f", "scale"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "one"], ["z"]),  # (batch, 1)
        # logits = [-z/2, z/2], so softmax(logits)[:, 1] = sigmoid(z)
        helper.make_node("Div", ["z", "two"], ["half_z"]),
        helper.make_node("Neg", ["half_z"], ["neg_half_z"]),
        helper.make_node("Concat", ["neg_half_z", "half_z"], ["logits"], axis=1),
        helper.make_node("Sigmoid", ["z"], ["prob2d"]),
        helper.make_node("Squeeze", ["prob2d", "axis1"], ["anomaly_probability"]),
    ]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
              for n in GRAPH_INPUTS]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
        helper.make_tensor_value_info("anomaly_probability", TensorProto.FLOAT, ["batch"]),
    ]
    graph = helper.make_graph(nodes, "toy", inputs, outputs, initializer=const)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def make_toy_bundle(directory: Path, threshold: float = 0.5,
                    int8_agreement: float = 1.0) -> Path:
    directory.mkdir(parents=True)
    tiny_tokenizer().save(str(directory / TOKENIZER_FILE))
    model = toy_graph()
    for name in MODEL_FILES.values():
        onnx.save(model, str(directory / name))
    pipeline = PipelineConfig(name="toy")
    table = TemplateTable(templates=TEMPLATES, counts=(5, 5, 1))
    encoder = PromptEncoder.from_file(directory / TOKENIZER_FILE, pipeline.prompt, table.ids())
    files = {p.name: FileEntry(sha256=file_sha256(p), bytes=p.stat().st_size)
             for p in sorted(directory.iterdir())}
    manifest = BundleManifest(
        model_version="toy-20260101T000000Z-000000000000",
        created_at="2026-01-01T00:00:00+00:00",
        pipeline=pipeline,
        templates=table,
        template_ids=tuple(table.ids()),
        label_names=("normal", "anomaly"),
        threshold=threshold,
        verbalizer=Verbalizer(label_words={"anomaly": ("error", "failure")},
                              token_ids={"anomaly": (1, 2)}, mask_token_id=encoder.mask_id),
        graph=GraphInfo(opset=17, exporter="hand-made"),
        variants=dict(MODEL_FILES),
        training=TrainingInfo(dataset="toy", base_model="none"),
        validation=ValidationReport(
            fp32=Fp32Check(windows=0, source="none", tolerance={}, max_abs_diff={}),
            int8=Int8Check(windows=0, source="none", unchanged_decisions=int8_agreement,
                           probability_drift_mean=0.0, probability_drift_max=0.0)),
        versions={},
        files=files,
    )
    write_manifest(manifest, directory)
    return directory
