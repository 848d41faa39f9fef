"""Tiny ONNX models built with onnx.helper, published the way training publishes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from serving.model_format import digit_manifest, sha256_bytes


def linear_softmax(seed: int = 0, classes: int = 10) -> onnx.ModelProto:
    """images [N,28,28] -> reshape -> MatMul -> Add -> Softmax: probabilities [N,classes]."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.05, size=(784, classes)).astype(np.float32)
    bias = rng.normal(0, 0.05, size=(classes,)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["logits0"]),
            helper.make_node("Add", ["logits0", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "linear_softmax",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def linear_sigmoid(seed: int = 0) -> onnx.ModelProto:
    """images [N,28,28] -> one logistic unit: probabilities [N,1]."""
    rng = np.random.default_rng(seed)
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["probabilities"]),
        ],
        "linear_sigmoid",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
            numpy_helper.from_array(rng.normal(0, 0.05, (784, 1)).astype(np.float32), "W"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def manifest(name: str, version: str, onnx_bytes: bytes, sigmoid: bool = False) -> dict:
    """A model.json for a tiny model."""
    labels = ["not 1", "1"] if sigmoid else [str(d) for d in range(10)]
    return digit_manifest(
        name,
        labels,
        output_kind="sigmoid" if sigmoid else "softmax",
        version=version,
        description=f"tiny test model {name}",
        sha256=sha256_bytes(onnx_bytes),
        test_accuracy=0.5,
    ).to_json()


def publish(
    root: Path,
    name: str,
    version: int,
    model: onnx.ModelProto,
    sigmoid: bool = False,
    **overrides: object,
) -> Path:
    """Write <root>/<name>/<version>/{model.onnx,model.json}; ``overrides`` patch model.json."""
    data = model.SerializeToString()
    target = root / name / str(version)
    target.mkdir(parents=True)
    (target / "model.onnx").write_bytes(data)
    meta = manifest(name, str(version), data, sigmoid) | overrides
    (target / "model.json").write_text(json.dumps(meta))
    return target
