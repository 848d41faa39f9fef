"""Talk to a server with the real tritonclient, in its own process.

tritonclient registers its own copy of the ``inference`` protobuf package, which
cannot share a process with the server's generated code (duplicate symbols),
so tests run this script with ``sys.executable`` and read its JSON output.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as triton


def main(address: str, model: str) -> None:
    """Print a JSON report of what tritonclient saw."""
    client = triton.InferenceServerClient(url=address)
    report: dict = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server": client.get_server_metadata(as_json=True),
        "metadata": client.get_model_metadata(model, as_json=True),
    }
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    report["images"] = images.tolist()

    raw_input = triton.InferInput("images", list(images.shape), "FP32")
    raw_input.set_data_from_numpy(images)  # tritonclient sends raw_input_contents
    result = client.infer(
        model, [raw_input], outputs=[triton.InferRequestedOutput("probabilities")]
    )
    report["raw"] = result.as_numpy("probabilities").tolist()
    report["raw_version"] = result.get_response().model_version

    # Typed contents: tritonclient has no public setter, so fill the tensor's
    # `contents` and send no raw bytes: the server must read fp32_contents.
    typed_input = triton.InferInput("images", list(images.shape), "FP32")
    typed_input._get_tensor().contents.fp32_contents.extend(images.reshape(-1).tolist())
    result = client.infer(model, [typed_input])
    report["typed"] = result.as_numpy("probabilities").tolist()

    try:
        client.infer("no-such-model", [raw_input])
        report["not_found"] = None
    except triton.InferenceServerException as exc:
        report["not_found"] = exc.status()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
