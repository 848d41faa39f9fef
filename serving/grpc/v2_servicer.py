"""``inference.GRPCInferenceService``: thin adapter from KServe V2 onto the data plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc as pb_grpc
from serving.dataplane import DataPlane, deadline_from_remaining
from serving.grpc.streaming import pump
from serving.grpc.v2_converters import (
    ResponseWriter,
    config_to_pb,
    inputs_from_pb,
    metadata_to_pb,
    response_to_pb,
    statistics_to_pb,
)
from serving.request_context import client_message, current_request_id, note_model
from serving.types import InferResult


class V2Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """KServe V2 / Open Inference Protocol plus the model repository extension."""

    def __init__(self, dataplane: DataPlane, max_stream_inflight: int) -> None:
        self._dataplane = dataplane
        self._max_inflight = max_stream_inflight
        self._writer = ResponseWriter()

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self._dataplane.live())

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._dataplane.ready())

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(
            ready=self._dataplane.model_ready(request.name, request.version)
        )

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        info = self._dataplane.server_info()
        return pb.ServerMetadataResponse(
            name=info.name, version=info.version, extensions=info.extensions
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        return metadata_to_pb(self._dataplane.model_metadata(request.name, request.version))

    async def _result(self, request: pb.ModelInferRequest, remaining: float | None) -> InferResult:
        result = await self._dataplane.infer(
            request.model_name,
            request.model_version,
            inputs_from_pb(request),
            deadline=deadline_from_remaining(remaining),
            outputs=[o.name for o in request.outputs],
        )
        note_model(result.model, result.version)
        return result

    async def _infer(
        self, request: pb.ModelInferRequest, remaining: float | None
    ) -> pb.ModelInferResponse:
        return response_to_pb(await self._result(request, remaining), request.id)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        """The response already serialised (ResponseWriter); the method's serializer passes
        bytes through (serving/grpc/calls.py)."""
        result = await self._result(request, context.time_remaining())
        return self._writer.encode(result, request.id)

    async def ModelStreamInfer(
        self, requests: AsyncIterator[pb.ModelInferRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        request_id = current_request_id()

        async def handle(request: pb.ModelInferRequest) -> pb.ModelStreamInferResponse:
            response = await self._infer(request, context.time_remaining())
            return pb.ModelStreamInferResponse(infer_response=response)

        def on_error(request: pb.ModelInferRequest, exc: Exception) -> pb.ModelStreamInferResponse:
            # V2 streams carry errors as text; keep the request id so the client can match it.
            message = client_message(exc, request_id)
            return pb.ModelStreamInferResponse(
                error_message=message,
                infer_response=pb.ModelInferResponse(
                    model_name=request.model_name,
                    model_version=request.model_version,
                    id=request.id,
                ),
            )

        async for response in pump(requests, handle, on_error, self._max_inflight):
            yield response

    async def ModelConfig(
        self, request: pb.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelConfigResponse:
        return config_to_pb(self._dataplane.model_config(request.name, request.version))

    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelStatisticsResponse:
        stats = await self._dataplane.model_statistics(request.name, request.version)
        return statistics_to_pb(stats)

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryIndexResponse:
        response = pb.RepositoryIndexResponse()
        for row in await self._dataplane.repository_index(request.ready):
            response.models.add(
                name=row.name, version=row.version, state=row.state, reason=row.reason
            )
        return response

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelLoadResponse:
        await self._dataplane.load_model(request.model_name)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelUnloadResponse:
        await self._dataplane.unload_model(request.model_name)
        return pb.RepositoryModelUnloadResponse()
