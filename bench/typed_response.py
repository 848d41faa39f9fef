"""How to build the typed ClassifyResponse: the measurement behind the choice (issue 11).

``python -m bench.typed_response`` prints microseconds per response and per image for the
per-image ``predictions.add`` loop the server uses, a list of Prediction messages passed at
once, and, for scale, the V2 API's single packed byte string for the same probabilities.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

import numpy as np

from serving.api import digits_pb2 as pb
from serving.api import open_inference_pb2 as v2

LABELS = tuple(str(d) for d in range(10))


def add_loop(probs: np.ndarray) -> bytes:
    """What serving/grpc/typed_converters.py does."""
    response = pb.ClassifyResponse(model="cnn", version="1", provider="CPU", labels=LABELS)
    add = response.predictions.add
    for row, winner in zip(probs.tolist(), probs.argmax(1).tolist(), strict=True):
        add(class_index=winner, label=LABELS[winner], probability=row[winner], probabilities=row)
    return response.SerializeToString()


def message_list(probs: np.ndarray) -> bytes:
    """Every Prediction built first, handed to the response once."""
    rows, best = probs.tolist(), probs.argmax(1).tolist()
    predictions = [
        pb.Prediction(class_index=w, label=LABELS[w], probability=r[w], probabilities=r)
        for r, w in zip(rows, best, strict=True)
    ]
    return pb.ClassifyResponse(
        model="cnn", version="1", provider="CPU", labels=LABELS, predictions=predictions
    ).SerializeToString()


def packed_bytes(probs: np.ndarray) -> bytes:
    """The V2 API's answer: one raw little-endian byte string, no per-image messages."""
    response = v2.ModelInferResponse(
        model_name="cnn", model_version="1", raw_output_contents=[probs.tobytes()]
    )
    response.outputs.add(name="probabilities", datatype="FP32", shape=probs.shape)
    return response.SerializeToString()


def measure(build: Callable[[np.ndarray], bytes], images: int) -> float:
    """Best-of-5 seconds per response for ``images`` rows of 10 probabilities."""
    probs = np.random.default_rng(0).random((images, 10)).astype(np.float32)
    number = max(1, 2000 // images)
    return min(timeit.repeat(lambda: build(probs), number=number, repeat=5)) / number


def main() -> None:
    """Print the table."""
    print(f"{'images':>6} {'builder':14} {'us/response':>12} {'us/image':>9}")
    for images in (1, 64, 1024):
        for build in (add_loop, message_list, packed_bytes):
            seconds = measure(build, images)
            print(
                f"{images:6d} {build.__name__:14} {seconds * 1e6:12.1f} "
                f"{seconds * 1e6 / images:9.2f}"
            )


if __name__ == "__main__":
    main()
