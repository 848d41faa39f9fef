"""KServe V2 protobuf messages <-> the data plane's ndarrays and results."""

from __future__ import annotations

import numpy as np

from serving.api import open_inference_pb2 as pb
from serving.errors import InvalidInput
from serving.tensors import CONTENTS_FIELD, from_contents, from_raw, numpy_dtype, to_raw
from serving.types import InferResult, ModelMetadata


def inputs_from_pb(request: pb.ModelInferRequest) -> list[tuple[str, np.ndarray]]:
    """The request's input tensors as (name, ndarray); wire-level checks only."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs"
        )
    decoded = []
    for index, tensor in enumerate(request.inputs):
        what = f"input {tensor.name!r}"
        shape = list(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput(f"{what}: send either raw_input_contents or contents, not both")
            decoded.append((tensor.name, from_raw(raw[index], tensor.datatype, shape, what)))
            continue
        field = CONTENTS_FIELD.get(tensor.datatype)
        if field is None:
            numpy_dtype(tensor.datatype, what)  # raises, naming the datatypes there are
        values = getattr(tensor.contents, field)
        decoded.append((tensor.name, from_contents(values, tensor.datatype, shape, what)))
    return decoded


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


def metadata_to_pb(meta: ModelMetadata) -> pb.ModelMetadataResponse:
    """ModelMetadata for a model (versions newest first)."""
    response = pb.ModelMetadataResponse(
        name=meta.name, versions=meta.versions, platform=meta.platform
    )
    for specs, field in ((meta.inputs, response.inputs), (meta.outputs, response.outputs)):
        for spec in specs:
            field.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
    return response
