"""The benchmark's model repository: shipped models (or stand-ins) plus a null model.

The null model does almost no arithmetic (softmax over the first 10 pixels),
so a server serving it measures everything except the model: gRPC, protobuf,
batching, Python. That is the transport ceiling the real models are held to.
When the trained models are not in ``model_repository/`` yet, stand-ins with
the same layer shapes and random weights take their place: their speed is
the same, their answers are meaningless (which a benchmark does not mind).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from serving.model_format import ModelManifest, digit_manifest, write_version

NULL_MODEL = "null"
BENCH_MODELS = ("mlp100", "cnn")
LABELS = [str(d) for d in range(10)]
_OPSET = 17


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    # onnxruntime 1.32 accepts IR 8 with opset 17; newer IR versions buy nothing here.
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _io() -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]:
    return (
        helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 28, 28]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
    )


def null_model() -> onnx.ModelProto:
    """images [N,28,28] -> softmax(first 10 pixels) [N,10]: valid probabilities, ~no compute."""
    images, probabilities = _io()
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
            helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["first10"]),
            # Softmax, not the raw pixels: the server checks that outputs sum to 1.
            helper.make_node("Softmax", ["first10"], ["probabilities"], axis=1),
        ],
        "null",
        [images],
        [probabilities],
        initializer=[
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "starts"),
            numpy_helper.from_array(np.array([10], dtype=np.int64), "ends"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        ],
    )
    return _finish(graph)


def _dense(rng: np.random.Generator, n_in: int, n_out: int, name: str) -> list[onnx.TensorProto]:
    scale = np.sqrt(2.0 / n_in)
    return [
        numpy_helper.from_array(
            rng.normal(0, scale, (n_in, n_out)).astype(np.float32), f"{name}_W"
        ),
        numpy_helper.from_array(np.zeros(n_out, dtype=np.float32), f"{name}_b"),
    ]


def _gemm(x: str, name: str, out: str) -> onnx.NodeProto:
    return helper.make_node("Gemm", [x, f"{name}_W", f"{name}_b"], [out])


def mlp100_standin(seed: int = 0) -> onnx.ModelProto:
    """784 -> 100 ReLU -> 50 ReLU -> 10 softmax, random weights (training's mlp100 shapes)."""
    rng = np.random.default_rng(seed)
    images, probabilities = _io()
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
            _gemm("flat", "h1", "h1_lin"),
            helper.make_node("Relu", ["h1_lin"], ["h1"]),
            _gemm("h1", "h2", "h2_lin"),
            helper.make_node("Relu", ["h2_lin"], ["h2"]),
            _gemm("h2", "out", "logits"),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "mlp100_standin",
        [images],
        [probabilities],
        initializer=[
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
            *_dense(rng, 784, 100, "h1"),
            *_dense(rng, 100, 50, "h2"),
            *_dense(rng, 50, 10, "out"),
        ],
    )
    return _finish(graph)


def cnn_standin(seed: int = 0) -> onnx.ModelProto:
    """conv32 3x3 -> conv32 3x3 -> maxpool 2 -> dense 128 -> 10 softmax, random weights."""
    rng = np.random.default_rng(seed)
    images, probabilities = _io()

    def conv(c_in: int, name: str) -> list[onnx.TensorProto]:
        scale = np.sqrt(2.0 / (c_in * 9))
        return [
            numpy_helper.from_array(
                rng.normal(0, scale, (32, c_in, 3, 3)).astype(np.float32), f"{name}_W"
            ),
            numpy_helper.from_array(np.zeros(32, dtype=np.float32), f"{name}_b"),
        ]

    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["images", "nchw_shape"], ["x0"]),
            helper.make_node("Conv", ["x0", "c1_W", "c1_b"], ["c1_lin"], kernel_shape=[3, 3]),
            helper.make_node("Relu", ["c1_lin"], ["c1"]),
            helper.make_node("Conv", ["c1", "c2_W", "c2_b"], ["c2_lin"], kernel_shape=[3, 3]),
            helper.make_node("Relu", ["c2_lin"], ["c2"]),
            helper.make_node("MaxPool", ["c2"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
            _gemm("flat", "d1", "d1_lin"),
            helper.make_node("Relu", ["d1_lin"], ["d1"]),
            _gemm("d1", "out", "logits"),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "cnn_standin",
        [images],
        [probabilities],
        initializer=[
            numpy_helper.from_array(np.array([-1, 1, 28, 28], dtype=np.int64), "nchw_shape"),
            *conv(1, "c1"),
            *conv(32, "c2"),
            *_dense(rng, 32 * 12 * 12, 128, "d1"),
            *_dense(rng, 128, 10, "out"),
        ],
    )
    return _finish(graph)


STANDINS = {"mlp100": mlp100_standin, "cnn": cnn_standin}


def publish(root: Path, name: str, model: onnx.ModelProto, description: str) -> Path:
    """Write ``<root>/<name>/1/{model.onnx,model.json}`` the way training publishes."""
    manifest = digit_manifest(name, LABELS, version="1", description=description)
    return write_version(root / name / "1", model.SerializeToString(), manifest)


def latest_version(model_dir: Path) -> Path | None:
    """The highest numbered version directory holding a model.onnx and model.json."""
    if not model_dir.is_dir():
        return None
    versions = [
        d
        for d in model_dir.iterdir()
        if d.is_dir()
        and d.name.isdigit()
        and (d / "model.onnx").is_file()
        and (d / "model.json").is_file()
    ]
    return max(versions, key=lambda d: int(d.name), default=None)


def build_repository(root: Path, shipped: Path) -> dict[str, str]:
    """Fill ``root`` with mlp100, cnn (shipped, else stand-ins) and the null model.

    Returns where each model came from, for the report.
    """
    sources: dict[str, str] = {}
    for name in BENCH_MODELS:
        found = latest_version(shipped / name)
        if found is not None:
            shutil.copytree(found, root / name / found.name)
            about = ModelManifest.read(found / "model.json").description
            sources[name] = f"shipped {found} ({about})"
        else:
            publish(root, name, STANDINS[name](), f"benchmark stand-in for {name} (random weights)")
            sources[name] = "stand-in: same layer shapes, random weights (shipped model missing)"
    publish(root, NULL_MODEL, null_model(), "null model: softmax of the first 10 pixels")
    sources[NULL_MODEL] = "null model (softmax of the first 10 pixels)"
    return sources
