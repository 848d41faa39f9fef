"""Redraw a published model's first-layer weight tiles from its ``model.onnx``.

``python -m training.weights model_repository/mlp16/1 [...]`` rewrites ``first_layer_weights.png``
in each version directory from the first dense layer's kernel stored in the ONNX file, masking
the pixels that MNIST's training images (almost) never light (see training.plots.signal_pixels).
Needs onnx and numpy only, not TensorFlow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.mnist import load_mnist
from training.plots import plot_first_layer_weights, signal_pixels

__all__ = ["first_dense_kernel", "main", "redraw"]

WEIGHTS = "first_layer_weights.png"


def first_dense_kernel(onnx_path: str | Path) -> np.ndarray:
    """The [784, units] weight matrix of the graph's first MatMul on the flattened image."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    weights = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            for name in node.input:
                if name in weights:
                    kernel = numpy_helper.to_array(weights[name])
                    if kernel.ndim == 2 and 784 in kernel.shape:
                        return kernel if kernel.shape[0] == 784 else kernel.T
    raise ValueError(f"{onnx_path}: no dense layer on the 784 input pixels found")


def redraw(version_dir: str | Path, signal: np.ndarray) -> Path:
    """Rewrite ``version_dir``/first_layer_weights.png; returns its path."""
    version_dir = Path(version_dir)
    name = json.loads((version_dir / "model.json").read_text())["name"]
    kernel = first_dense_kernel(version_dir / "model.onnx")
    title = f"{name}: first-layer weights ({kernel.shape[1]} units)"
    return plot_first_layer_weights(kernel, version_dir / WEIGHTS, title, signal=signal)


def main(argv: Sequence[str] | None = None) -> int:
    """Redraw each directory given on the command line."""
    dirs = list(sys.argv[1:] if argv is None else argv)
    if not dirs:
        print("usage: python -m training.weights VERSION_DIR [...]", file=sys.stderr)
        return 2
    signal = signal_pixels(load_mnist().x_train)
    print(f"weights: {int(signal.sum())} of 784 pixels carry signal", file=sys.stderr)
    for directory in dirs:
        print(f"weights: wrote {redraw(directory, signal)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
