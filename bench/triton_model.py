"""Triton Python-backend model: one onnxruntime session per instance (a benchmark peer).

bench/triton_peer.py copies this file as ``<model>/1/model.py`` into the model repository it
builds for Triton. It runs inside Triton's Python backend stub, with the numpy and
onnxruntime of the Triton venv (``.venv-triton``), never in the digits server. Each batch
Triton's dynamic batcher forms arrives as several requests: their inputs are joined, run in
one ``session.run`` and split back, one response per request.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Triton calls ``initialize`` once per instance, then ``execute`` per formed batch."""

    def initialize(self, args: dict) -> None:
        """Open the session with the intra-op threads the config's parameters name."""
        config = json.loads(args["model_config"])
        threads = int(config["parameters"]["intra_op_threads"]["string_value"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # As in the digits server: spinning threads burn the cores the front end needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = config["input"][0]["name"]
        self.output = config["output"][0]["name"]

    def execute(self, requests: list) -> list:
        """One response per request, in order."""
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        out = self.session.run([self.output], {self.input: batch})[0]
        responses = []
        start = 0
        for array in arrays:
            end = start + array.shape[0]
            tensor = pb_utils.Tensor(self.output, out[start:end])
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start = end
        return responses
