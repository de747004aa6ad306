"""Packaging: one ONNX Runtime wheel (the GPU one on Linux x86_64), usable on the CPU, and the
console scripts."""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent


@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                    reason="onnxruntime-gpu is only chosen on Linux x86_64")
def test_gpu_wheel_installed_alone() -> None:
    installed = {d.metadata["Name"].lower() for d in md.distributions()}
    assert "onnxruntime-gpu" in installed
    assert "onnxruntime" not in installed  # the two wheels overwrite each other's files


def test_inference_session_on_cpu_provider() -> None:
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"])], "add",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "y")],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.get_providers() == ["CPUExecutionProvider"]
    (z,) = session.run(None, {"x": np.ones(2, np.float32), "y": np.ones(2, np.float32)})
    assert z.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("command", [["logprompt", "--help"], ["export-onnx", "--help"],
                                     ["logprompt", "broker", "--help"]])
def test_console_scripts_answer_help(command: list[str]) -> None:
    result = subprocess.run([str(BIN / command[0]), *command[1:]], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
