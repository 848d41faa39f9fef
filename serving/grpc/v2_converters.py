"""KServe V2 protobuf messages <-> the data plane's ndarrays and results."""

from __future__ import annotations

import numpy as np

from serving.api import open_inference_pb2 as pb
from serving.errors import InvalidInput
from serving.registry import LoadedVersion
from serving.tensors import CONTENTS_FIELD, from_contents, from_raw, numpy_dtype, to_raw
from serving.types import InferResult


def input_from_pb(request: pb.ModelInferRequest) -> tuple[str, np.ndarray]:
    """The request's single input tensor as (name, ndarray); wire-level checks only."""
    if len(request.inputs) != 1:
        raise InvalidInput(
            f"expected exactly 1 input tensor, got {len(request.inputs)} "
            "(see ModelMetadata for the input's name, datatype and shape)"
        )
    tensor = request.inputs[0]
    what = f"input {tensor.name!r}"
    shape = list(tensor.shape)
    numpy_dtype(tensor.datatype, what)
    if request.raw_input_contents:
        if len(request.raw_input_contents) != len(request.inputs):
            raise InvalidInput(
                f"raw_input_contents has {len(request.raw_input_contents)} entries for "
                f"{len(request.inputs)} inputs"
            )
        if tensor.HasField("contents"):
            raise InvalidInput(f"{what}: send either raw_input_contents or contents, not both")
        return tensor.name, from_raw(request.raw_input_contents[0], tensor.datatype, shape, what)
    values = getattr(tensor.contents, CONTENTS_FIELD[tensor.datatype])
    return tensor.name, from_contents(values, tensor.datatype, shape, what)


def response_to_pb(result: InferResult, request_id: str) -> pb.ModelInferResponse:
    """Outputs as raw little-endian bytes (what Triton sends; every V2 client reads it)."""
    datatype, data = to_raw(result.outputs)
    response = pb.ModelInferResponse(
        model_name=result.model,
        model_version=result.version,
        id=request_id,
        raw_output_contents=[data],
    )
    response.outputs.add(
        name=result.manifest.output.name, datatype=datatype, shape=result.outputs.shape
    )
    response.parameters["provider"].string_param = result.provider
    return response


def metadata_to_pb(name: str, versions: list[LoadedVersion]) -> pb.ModelMetadataResponse:
    """ModelMetadata for a model (``versions`` newest first; the first describes tensors)."""
    manifest = versions[0].manifest
    response = pb.ModelMetadataResponse(
        name=name, versions=[v.version for v in versions], platform=manifest.platform
    )
    for spec, field in ((manifest.input, response.inputs), (manifest.output, response.outputs)):
        field.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
    return response
