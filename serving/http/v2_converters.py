"""KServe V2 REST bodies <-> the core's arrays and results, with the binary-data extension.

A request is JSON, or JSON followed by raw tensor bytes when the header
``Inference-Header-Content-Length`` gives the JSON's length (what tritonclient.http sends by
default). Outputs come back in JSON ``data``, or as raw bytes after the JSON when the client asks
with ``binary_data`` (per output) or ``binary_data_output`` (request-wide).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from serving.errors import InvalidInput
from serving.tensors import NUMPY_TO_V2, from_json_data, from_raw, to_raw
from serving.types import InferResult, ModelMetadata, TensorSpec

HEADER_LENGTH = "inference-header-content-length"


@dataclass(frozen=True, slots=True)
class RestInferRequest:
    """A decoded V2 REST inference request."""

    id: str
    inputs: list[tuple[str, np.ndarray]]
    outputs: list[str]
    binary_outputs: frozenset[str]
    binary_default: bool


def _json(data: bytes | memoryview, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON ({exc})") from None


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def infer_request_from_body(body: bytes, header_length: str | None) -> RestInferRequest:
    """Parse a V2 REST infer body (JSON, or JSON + binary tensors)."""
    view = memoryview(body)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length {header_length!r} is not a length within "
                f"the {len(body)}-byte body"
            )
        split = int(header_length)
        header, binary = view[:split], view[split:]
    else:
        header, binary = view, view[len(body) :]
    request = _object(_json(header, "request body"), "request body")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("request needs 'inputs': a list of tensors")
    decoded: list[tuple[str, np.ndarray]] = []
    offset = 0
    for index, entry in enumerate(inputs):
        tensor = _object(entry, f"inputs[{index}]")
        name = str(tensor.get("name", ""))
        what = f"input {name!r}"
        datatype = tensor.get("datatype")
        shape = tensor.get("shape")
        if not isinstance(datatype, str) or not isinstance(shape, list):
            raise InvalidInput(f"{what}: needs 'datatype' (string) and 'shape' (list)")
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise InvalidInput(f"{what}: shape must be a list of integers, got {shape}")
        size = _object(tensor.get("parameters", {}), f"{what} parameters").get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidInput(
                    f"{what}: binary_data_size {size!r} does not fit the {len(binary)} bytes "
                    "after the JSON header"
                )
            array = from_raw(bytes(binary[offset : offset + size]), datatype, shape, what)
            offset += size
        elif "data" in tensor:
            array = from_json_data(tensor["data"], datatype, shape, what)
        else:
            raise InvalidInput(f"{what}: send 'data' or the binary extension's binary_data_size")
        decoded.append((name, array))
    if offset != len(binary):
        raise InvalidInput(
            f"{len(binary) - offset} bytes after the JSON header belong to no input "
            "(check binary_data_size)"
        )
    outputs: list[str] = []
    binary_outputs: set[str] = set()
    for index, entry in enumerate(request.get("outputs") or []):
        out = _object(entry, f"outputs[{index}]")
        name = str(out.get("name", ""))
        outputs.append(name)
        if _object(out.get("parameters", {}), f"output {name!r} parameters").get("binary_data"):
            binary_outputs.add(name)
    parameters = _object(request.get("parameters", {}), "parameters")
    return RestInferRequest(
        id=str(request.get("id", "")),
        inputs=decoded,
        outputs=outputs,
        binary_outputs=frozenset(binary_outputs),
        binary_default=bool(parameters.get("binary_data_output", False)),
    )


def infer_response_body(
    result: InferResult, request: RestInferRequest
) -> tuple[bytes, dict[str, str]]:
    """The V2 REST response body and the headers that describe it."""
    name = result.manifest.output.name
    binary = name in request.binary_outputs or (
        request.binary_default and name not in request.outputs
    )
    output: dict[str, Any] = {"name": name, "shape": list(result.outputs.shape)}
    raw = b""
    if binary:
        output["datatype"], raw = to_raw(result.outputs)
        output["parameters"] = {"binary_data_size": len(raw)}
    else:
        output["datatype"] = NUMPY_TO_V2[result.outputs.dtype]
        output["data"] = result.outputs.reshape(-1)
    header = orjson.dumps(
        {
            "model_name": result.model,
            "model_version": result.version,
            "id": request.id,
            "parameters": {"provider": result.provider},
            "outputs": [output],
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    if not binary:
        return header, {"content-type": "application/json"}
    return header + raw, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }


def tensor_json(spec: TensorSpec) -> dict[str, Any]:
    """A tensor's metadata as V2 REST shows it."""
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def metadata_json(meta: ModelMetadata) -> dict[str, Any]:
    """V2 REST model metadata."""
    return {
        "name": meta.name,
        "versions": list(meta.versions),
        "platform": meta.platform,
        "inputs": [tensor_json(s) for s in meta.inputs],
        "outputs": [tensor_json(s) for s in meta.outputs],
    }
