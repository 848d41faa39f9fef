"""Rebuild a published model's Keras model from its ``model.onnx``, to fine-tune it later.

``python -m training.recover model_repository/robust/2`` builds the model's registered Keras
architecture (training.models), loads every weight from the ONNX initializers, checks it
against onnxruntime on the 10,000 MNIST test images (same label on every image, max |prob
diff| <= 1e-5: the export gate, the other way round) and only then writes
``model.keras`` into the version directory. Versions published before ``digits-train`` kept
their Keras model get one this way, without a 14-minute retrain.

Batch norm is the one layer that cannot be copied as is: tf2onnx folds each convolution's
batch norm into the convolution (kernel x scale, shift as the bias) and keeps the dense
layer's as a multiply and an add, so the original gamma, beta and moving statistics are gone.
Any (gamma, beta, mean, variance) giving the same per-channel ``scale * z + shift`` serves
the same answers; this picks the moving mean and variance measured on MNIST training images
(so a fine-tune's first batches, normalised by their own statistics, start where the served
model is) and solves gamma and beta from them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.export import DEFAULT_TOLERANCE, GateFailed, GateReport, run_gate
from training.mnist import Mnist, load_mnist, to_float
from training.models import MODELS, ModelSpec
from training.publish import KERAS_FILE

__all__ = ["OnnxWeights", "main", "onnx_weights", "rebuild", "recover"]

# Training images whose activations give the moving statistics (see the module docstring).
STATISTICS_IMAGES = 10_000


@dataclass(frozen=True)
class OnnxWeights:
    """What a layer's weights are in the ONNX graph, keyed by Keras layer name.

    ``kernels``: Keras-layout kernels (HWIO for convolutions, [in, out] for dense layers);
    ``biases``: dense biases; ``affine``: (scale, shift) that the batch norm after a layer
    applies to its output at inference time (scale 1 where it was folded into the kernel).
    """

    kernels: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    affine: dict[str, tuple[np.ndarray, np.ndarray]]


def _layer_name(tensor: str) -> str:
    # tf2onnx names tensors after the Keras op path: "robust_1/conv1_1/convolution/...:0".
    parts = tensor.split("/")
    if len(parts) < 2:
        raise GateFailed(f"cannot tell the Keras layer of ONNX tensor {tensor!r}")
    name = parts[1]
    return name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name


def onnx_weights(onnx_path: str | Path) -> OnnxWeights:
    """Read kernels, biases and batch-norm affines from a model.onnx exported by tf2onnx."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    affine: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    produced_by = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type == "Conv":
            weight, shift = init[node.input[1]], init[node.input[2]]
            layer = _layer_name(node.input[1])
            kernels[layer] = weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
            affine[layer] = (np.ones_like(shift), shift)
        elif node.op_type == "MatMul" and node.input[1] in init:
            kernels[_layer_name(node.input[1])] = init[node.input[1]]
        elif node.op_type == "Add" and node.input[1] in init:
            source = produced_by.get(node.input[0])
            if source is not None and source.op_type == "MatMul":
                biases[_layer_name(node.input[1])] = init[node.input[1]]
            elif source is not None and source.op_type == "Mul" and source.input[1] in init:
                matmul = produced_by[source.input[0]]
                affine[_layer_name(matmul.input[1])] = (init[source.input[1]], init[node.input[1]])
    return OnnxWeights(kernels, biases, affine)


def _batch_norm_after(model: Any) -> dict[str, Any]:
    """Keras layer name -> the BatchNormalization layer that takes its output."""
    import keras

    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            source = layer.input._keras_history.operation  # the layer feeding it
            found[source.name] = layer
    return found


def rebuild(spec: ModelSpec, onnx_path: str | Path, statistics_images: np.ndarray) -> Any:
    """The spec's Keras model with the ONNX file's weights (see the module docstring)."""
    import keras

    weights = onnx_weights(onnx_path)
    model = spec.build()
    norms = _batch_norm_after(model)
    for layer in model.layers:
        if layer.name not in weights.kernels:
            continue
        values = [weights.kernels[layer.name]]
        if layer.use_bias:
            values.append(weights.biases[layer.name])
        layer.set_weights(values)
    missing = sorted(set(weights.kernels) - {la.name for la in model.layers})
    if missing or set(norms) != set(weights.affine):
        raise GateFailed(
            f"{onnx_path} does not match {spec.name}'s layers: ONNX-only {missing}, batch norms "
            f"after {sorted(norms)} vs ONNX {sorted(weights.affine)}"
        )
    # The pre-batch-norm activations do not depend on the statistics chosen, so one pass
    # measures them all.
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in norms])
    outputs = probe.predict(to_float(statistics_images), batch_size=500, verbose=0)
    for (name, norm), z in zip(norms.items(), outputs, strict=True):
        axes = tuple(range(z.ndim - 1))
        mean = z.mean(axis=axes, dtype=np.float64)
        var = z.var(axis=axes, dtype=np.float64)
        scale, shift = (np.asarray(v, np.float64) for v in weights.affine[name])
        gamma = scale * np.sqrt(var + norm.epsilon)
        beta = shift + scale * mean
        norm.set_weights([np.asarray(v, np.float32) for v in (gamma, beta, mean, var)])
    return model


def recover(
    version_dir: str | Path,
    data: Mnist,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[Path, GateReport]:
    """Rebuild ``version_dir``'s Keras model, gate it against its ONNX file, save model.keras.

    Raises GateFailed (and writes nothing) if onnxruntime and the rebuilt model disagree.
    """
    from training.train import predict

    version_dir = Path(version_dir)
    name = json.loads((version_dir / "model.json").read_text())["name"]
    if name not in MODELS:
        raise GateFailed(f"{version_dir}: {name!r} is not a registered model")
    spec = MODELS[name]
    onnx_path = version_dir / "model.onnx"
    model = rebuild(spec, onnx_path, data.x_train[:STATISTICS_IMAGES])
    report = run_gate(
        onnx_path,
        predict(model, data.x_test),
        data.x_test,
        spec.targets(data.y_test),
        spec.output_kind,
        tolerance=tolerance,
    )
    # Written beside, then renamed: a reader sees no file or a whole one.
    target = version_dir / KERAS_FILE
    partial = version_dir / f".{KERAS_FILE}.partial.keras"
    model.save(partial)
    os.replace(partial, target)
    return target, report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: recover each version directory given."""
    parser = argparse.ArgumentParser(prog="python -m training.recover", description=__doc__)
    parser.add_argument("version_dirs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, help="MNIST .npz or IDX directory")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = load_mnist(args.data)
    status = 0
    for version_dir in args.version_dirs:
        try:
            path, report = recover(version_dir, data)
        except (GateFailed, OSError, KeyError, ValueError) as exc:
            print(f"recover: error: {version_dir}: {exc}", file=sys.stderr)
            status = 1
            continue
        print(
            f"recover: wrote {path}: {report.images} MNIST test images, same label on all, "
            f"max |diff| vs onnxruntime {report.max_abs_diff:.3g}, accuracy "
            f"{report.onnx_accuracy:.4f}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
