"""``inference.GRPCInferenceService``: thin adapter from KServe V2 onto the data plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from serving import __version__
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc as pb_grpc
from serving.dataplane import DataPlane, deadline_from_remaining
from serving.errors import ModelNotReady, PermissionDenied
from serving.grpc.streaming import pump
from serving.grpc.v2_converters import input_from_pb, metadata_to_pb, response_to_pb
from serving.repository.manager import RepositoryManager
from serving.request_context import client_message, current_request, note_model


class V2Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """KServe V2 / Open Inference Protocol plus the model repository extension."""

    def __init__(
        self,
        dataplane: DataPlane,
        manager: RepositoryManager,
        model_control: bool,
        max_stream_inflight: int,
    ) -> None:
        self._dataplane = dataplane
        self._manager = manager
        self._model_control = model_control
        self._max_inflight = max_stream_inflight

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
        extensions = ["model_repository"] if self._model_control else []
        return pb.ServerMetadataResponse(
            name="digits-server", version=__version__, extensions=extensions
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        target = self._dataplane.resolve(request.name, request.version)
        versions = list(self._dataplane.registry.models[request.name].versions)
        if request.version:
            versions = [target]
        return metadata_to_pb(request.name, versions)

    async def _infer(
        self, request: pb.ModelInferRequest, remaining: float | None
    ) -> pb.ModelInferResponse:
        input_name, images = input_from_pb(request)
        result = await self._dataplane.infer(
            request.model_name,
            request.model_version,
            images,
            deadline=deadline_from_remaining(remaining),
            input_name=input_name,
            outputs=[o.name for o in request.outputs],
        )
        note_model(result.model, result.version)
        return response_to_pb(result, request.id)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        return await self._infer(request, context.time_remaining())

    async def ModelStreamInfer(
        self, requests: AsyncIterator[pb.ModelInferRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        info = current_request.get()
        request_id = info.request_id if info else ""

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

    def _require_control(self) -> None:
        if not self._model_control:
            raise PermissionDenied(
                "repository control is disabled on this server (start it with "
                "--model-control on, or enable auth)"
            )

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryIndexResponse:
        response = pb.RepositoryIndexResponse()
        for name, version, state, reason in await self._manager.index():
            if request.ready and state != "READY":
                continue
            response.models.add(name=name, version=version, state=state, reason=reason)
        return response

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelLoadResponse:
        self._require_control()
        await self._manager.sync(only=request.model_name, force=True)
        state = self._dataplane.registry.models[request.model_name]
        if not state.ready:
            raise ModelNotReady(f"model {request.model_name!r} failed to load: {state.last_error}")
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelUnloadResponse:
        self._require_control()
        await self._manager.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()
