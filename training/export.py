"""Keras -> ONNX export, and the equivalence gate that an exported file must pass.

:func:`export_onnx` needs TensorFlow/tf2onnx (imported lazily); :func:`run_gate` and
:func:`onnx_predict` need only onnxruntime and numpy, so the gate also runs without TensorFlow.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.mnist import to_float
from training.models import INPUT_NAME, OUTPUT_NAME, OutputKind, predict_labels

__all__ = [
    "BATCH_DIM",
    "DEFAULT_TOLERANCE",
    "OPSET",
    "GateFailed",
    "GateReport",
    "export_onnx",
    "normalize_io",
    "onnx_predict",
    "run_gate",
]

OPSET = 17
BATCH_DIM = "N"
DEFAULT_TOLERANCE = 1e-5


class GateFailed(RuntimeError):
    """The ONNX file does not behave like the Keras model (or misses the accuracy bar)."""


@dataclass(frozen=True)
class GateReport:
    """What the gate measured on the test images."""

    images: int
    keras_accuracy: float
    onnx_accuracy: float
    max_abs_diff: float
    disagreements: int
    tolerance: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def _rename_value(graph: Any, old: str, new: str) -> None:
    """Rename a tensor everywhere it is referenced in ``graph`` (not in subgraphs: none here)."""
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for collection in (graph.input, graph.output, graph.value_info):
        for value in collection:
            if value.name == old:
                value.name = new


def normalize_io(model: Any, output_width: int) -> Any:
    """Force the served contract onto an ONNX model and check it.

    The single input becomes ``images`` float32 [N,28,28], the single output ``probabilities``
    float32 [N,output_width], with the batch dimension named ``N`` (tf2onnx names it
    ``unk__NN``). Raises GateFailed if the graph cannot be made to fit.
    """
    import onnx

    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise GateFailed(
            f"expected one input and one output, got {[i.name for i in inputs]} -> "
            f"{[o.name for o in graph.output]}"
        )
    _rename_value(graph, inputs[0].name, INPUT_NAME)
    _rename_value(graph, graph.output[0].name, OUTPUT_NAME)

    for value, expected in ((inputs[0], [BATCH_DIM, 28, 28]), (graph.output[0], None)):
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise GateFailed(f"{value.name} must be float32, is elem_type {tensor_type.elem_type}")
        dims = tensor_type.shape.dim
        dims[0].ClearField("dim_value")
        dims[0].dim_param = BATCH_DIM
        want = expected or [BATCH_DIM, output_width]
        got = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]
        if got != want:
            raise GateFailed(f"{value.name} has shape {got}, expected {want}")
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(keras_model: Any, path: str | Path, output_width: int, opset: int = OPSET) -> Path:
    """Convert a functional Keras model to ONNX at ``path`` with the served input/output names.

    Uses ``tf2onnx.convert.from_keras`` with an input signature whose batch dimension is
    dynamic; the names are then normalised and the file re-checked with onnx.checker.
    """
    import onnx
    import tensorflow as tf
    import tf2onnx

    path = Path(path)
    signature = [tf.TensorSpec([None, 28, 28], tf.float32, name=INPUT_NAME)]
    model_proto, _ = tf2onnx.convert.from_keras(keras_model, input_signature=signature, opset=opset)
    model_proto = normalize_io(model_proto, output_width)
    model_proto.doc_string = (
        f"digits-server {keras_model.name}: uint8 pixel / 255 in, {OUTPUT_NAME} out"
    )
    onnx.save_model(model_proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


def onnx_predict(
    path: str | Path, images: np.ndarray, batch_size: int = 1000, progress: bool = True
) -> np.ndarray:
    """Run an ONNX file in onnxruntime (CPU) on images [N,28,28]; return probabilities.

    uint8 images are normalised here; float images are taken as already in [0, 1] (the
    prepared inputs the feedback store keeps).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = to_float(images) if images.dtype == np.uint8 else np.asarray(images, np.float32)
    outputs: list[np.ndarray] = []
    total = len(x)
    # A live counter on a terminal; in a log file one line is enough (\r would pile up).
    live = progress and sys.stderr.isatty()
    for start in range(0, total, batch_size):
        batch = x[start : start + batch_size]
        outputs.append(session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0])
        if live:
            done = min(start + batch_size, total)
            print(f"\rgate: onnxruntime {done}/{total} images", end="", file=sys.stderr, flush=True)
    if live:
        print(file=sys.stderr, flush=True)
    elif progress:
        print(f"gate: onnxruntime ran {total} images", file=sys.stderr, flush=True)
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outputs)


def run_gate(
    onnx_path: str | Path,
    keras_probabilities: np.ndarray,
    images: np.ndarray,
    targets: np.ndarray,
    output_kind: OutputKind,
    tolerance: float = DEFAULT_TOLERANCE,
    required_accuracy: float | None = None,
) -> GateReport:
    """Check an ONNX file against the Keras model's outputs on the same images.

    Passes only if the predicted label agrees on every image, max |prob diff| <= tolerance
    and, when ``required_accuracy`` is given, the ONNX accuracy reaches it. Raises GateFailed
    otherwise; prints both accuracies and the max diff either way.
    """
    keras_probabilities = np.asarray(keras_probabilities, dtype=np.float32)
    onnx_probabilities = onnx_predict(onnx_path, images)
    if onnx_probabilities.shape != keras_probabilities.shape:
        raise GateFailed(
            f"ONNX output shape {list(onnx_probabilities.shape)} != Keras "
            f"{list(keras_probabilities.shape)}"
        )
    targets = np.asarray(targets).astype(np.int64)
    keras_labels = predict_labels(keras_probabilities, output_kind)
    onnx_labels = predict_labels(onnx_probabilities, output_kind)
    diff = np.abs(onnx_probabilities - keras_probabilities)
    report = GateReport(
        images=len(images),
        keras_accuracy=float(np.mean(keras_labels == targets)),
        onnx_accuracy=float(np.mean(onnx_labels == targets)),
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        disagreements=int(np.sum(keras_labels != onnx_labels)),
        tolerance=tolerance,
    )
    print(
        f"gate: {report.images} images, accuracy keras {report.keras_accuracy:.4f} "
        f"onnx {report.onnx_accuracy:.4f}, max |diff| {report.max_abs_diff:.3g} "
        f"(tolerance {tolerance:g}), label disagreements {report.disagreements}",
        file=sys.stderr,
        flush=True,
    )
    problems = []
    if report.disagreements:
        problems.append(f"{report.disagreements} images classified differently")
    if not report.max_abs_diff <= tolerance:  # "not <=" also catches NaN
        problems.append(f"max |prob diff| {report.max_abs_diff:.3g} > {tolerance:g}")
    if required_accuracy is not None and report.onnx_accuracy < required_accuracy:
        problems.append(f"accuracy {report.onnx_accuracy:.4f} < required {required_accuracy:.4f}")
    if problems:
        raise GateFailed(f"gate failed for {onnx_path}: " + "; ".join(problems))
    return report
