"""training.export: the served ONNX contract and the Keras-vs-ONNX equivalence gate."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from training.export import GateFailed, normalize_io, onnx_predict, run_gate
from training.mnist import to_float
from training.models import MODELS


def _linear_model(
    weights: np.ndarray, bias: np.ndarray, in_name: str = "x:0", out_name: str = "Identity:0"
) -> onnx.ModelProto:
    """A tf2onnx-looking linear softmax: odd tensor names and an ``unk__`` batch dim."""
    classes = weights.shape[1]
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", [in_name, "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["logits0"]),
            helper.make_node("Add", ["logits0", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], [out_name], axis=1),
        ],
        "linear",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["unk__7", 28, 28])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["unk__8", classes])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "shape"),
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _numpy_softmax(images: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = to_float(images).reshape(len(images), 784) @ weights + bias
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def linear(tmp_path, small_mnist):
    """A linear ONNX model fitted by least squares, with its exact numpy reference outputs."""
    x = to_float(small_mnist.x_train).reshape(-1, 784)
    onehot = np.eye(10, dtype=np.float32)[small_mnist.y_train]
    weights = np.linalg.lstsq(x, onehot * 10, rcond=None)[0].astype(np.float32)
    bias = np.zeros(10, np.float32)
    model = normalize_io(_linear_model(weights, bias), 10)
    path = tmp_path / "linear.onnx"
    onnx.save_model(model, str(path))
    return path, _numpy_softmax(small_mnist.x_test, weights, bias)


def test_normalize_io_renames_and_names_batch_dim():
    model = normalize_io(_linear_model(np.zeros((784, 10)), np.zeros(10)), 10)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "images" and out.name == "probabilities"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 28, 28]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 10]
    assert model.graph.node[0].input[0] == "images"
    assert model.graph.node[-1].output[0] == "probabilities"


def test_normalize_io_rejects_wrong_width():
    with pytest.raises(GateFailed, match="expected"):
        normalize_io(_linear_model(np.zeros((784, 3)), np.zeros(3)), 10)


def test_gate_passes_for_equivalent_model(linear, small_mnist):
    path, reference = linear
    report = run_gate(path, reference, small_mnist.x_test, small_mnist.y_test, "softmax")
    assert report.images == 2000 and report.disagreements == 0
    assert report.max_abs_diff <= 1e-5
    assert report.onnx_accuracy == report.keras_accuracy > 0.5


def test_gate_fails_on_altered_initializer(linear, tmp_path, small_mnist):
    path, reference = linear
    model = onnx.load(str(path))
    weights = next(init for init in model.graph.initializer if init.name == "W")
    array = numpy_helper.to_array(weights).copy()
    array[400, 3] += 0.5  # one weight of one class, centre pixel
    weights.CopyFrom(numpy_helper.from_array(array, "W"))
    altered = tmp_path / "altered.onnx"
    onnx.save_model(model, str(altered))
    with pytest.raises(GateFailed, match="max \\|prob diff\\|"):
        run_gate(altered, reference, small_mnist.x_test, small_mnist.y_test, "softmax")


def test_gate_fails_below_required_accuracy(linear, small_mnist):
    path, reference = linear
    with pytest.raises(GateFailed, match=r"required 0\.9990"):
        run_gate(
            path, reference, small_mnist.x_test, small_mnist.y_test, "softmax",
            required_accuracy=0.999,
        )  # fmt: skip


def test_gate_fails_on_shape_mismatch(linear, small_mnist):
    path, reference = linear
    with pytest.raises(GateFailed, match="shape"):
        run_gate(path, reference[:, :1], small_mnist.x_test, small_mnist.y_test, "sigmoid")


def test_gate_fails_on_nan(linear, small_mnist):
    path, reference = linear
    poisoned = reference.copy()
    poisoned[0, 0] = np.nan
    with pytest.raises(GateFailed):
        run_gate(path, poisoned, small_mnist.x_test, small_mnist.y_test, "softmax")


# --------------------------------------------------------------------------- real export


@pytest.mark.train
@pytest.mark.parametrize("name", ["mlp16", "cnn", "one_vs_rest"])
def test_export_passes_gate_on_full_test_set(name, trained, mnist, tmp_path):
    pytest.importorskip("tensorflow")
    from training.export import export_onnx
    from training.train import predict

    spec = MODELS[name]
    result = trained(name)
    path = export_onnx(result.model, tmp_path / "model.onnx", spec.output_width)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("images", "probabilities")
    assert inp.type.tensor_type.elem_type == out.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == [
        "N", spec.output_width,
    ]  # fmt: skip
    keras_probs = predict(result.model, mnist.x_test)
    report = run_gate(path, keras_probs, mnist.x_test, spec.targets(mnist.y_test), spec.output_kind)
    assert report.images == 10000 and report.disagreements == 0
    # Any batch size works (dynamic batch dim), including 1.
    assert onnx_predict(path, mnist.x_test[:1], progress=False).shape == (1, spec.output_width)

    # A deliberately altered file must fail: scale the largest float initializer.
    altered = onnx.load(str(path))
    init = max(
        (i for i in altered.graph.initializer if i.data_type == TensorProto.FLOAT),
        key=lambda i: numpy_helper.to_array(i).size,
    )
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.01, init.name))
    altered_path = tmp_path / "altered.onnx"
    onnx.save_model(altered, str(altered_path))
    with pytest.raises(GateFailed):
        run_gate(
            altered_path, keras_probs, mnist.x_test, spec.targets(mnist.y_test), spec.output_kind
        )
