"""``digits.v1.DigitClassifier``: thin adapter from the typed API onto the data plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc as pb_grpc
from serving.dataplane import DataPlane, deadline_from_remaining
from serving.grpc.status import status_of
from serving.grpc.streaming import pump
from serving.grpc.typed_converters import images_from_pb, model_info_to_pb, response_to_pb
from serving.request_context import client_message, current_request, note_model


class TypedServicer(pb_grpc.DigitClassifierServicer):
    """Classify digits; list and describe models."""

    def __init__(
        self,
        dataplane: DataPlane,
        default_model: str,
        max_batch_size: int,
        max_stream_inflight: int,
    ) -> None:
        self._dataplane = dataplane
        self._default_model = default_model
        self._max_batch_size = max_batch_size
        self._max_inflight = max_stream_inflight

    async def _classify(
        self, request: pb.ClassifyRequest, remaining: float | None
    ) -> pb.ClassifyResponse:
        name = request.model or self._default_model
        if request.WhichOneof("images") == "encoded":
            # Decoding photos is the expensive part: fail an unknown model before it.
            self._dataplane.resolve(name, request.version)
        images = await images_from_pb(request, self._dataplane.max_images)
        result = await self._dataplane.infer(
            name, request.version, images, deadline=deadline_from_remaining(remaining)
        )
        note_model(result.model, result.version)
        return response_to_pb(result, request.request_id)

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        return await self._classify(request, context.time_remaining())

    async def ClassifyStream(
        self, requests: AsyncIterator[pb.ClassifyRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ClassifyStreamResponse]:
        info = current_request.get()
        stream_id = info.request_id if info else ""

        async def handle(request: pb.ClassifyRequest) -> pb.ClassifyStreamResponse:
            return pb.ClassifyStreamResponse(
                response=await self._classify(request, context.time_remaining())
            )

        def on_error(request: pb.ClassifyRequest, exc: Exception) -> pb.ClassifyStreamResponse:
            return pb.ClassifyStreamResponse(
                error=pb.StreamError(
                    request_id=request.request_id,
                    code=status_of(exc).value[0],
                    message=client_message(exc, stream_id),
                )
            )

        async for response in pump(requests, handle, on_error, self._max_inflight):
            yield response

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        response = pb.ListModelsResponse()
        for name, state in sorted(self._dataplane.registry.models.items()):
            if state.versions:
                response.models.append(
                    model_info_to_pb(state.versions[0], state.version_names(), self._max_batch_size)
                )
            else:
                response.models.add(name=name, ready=False, description=state.last_error)
        return response

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        name = request.model or self._default_model
        target = self._dataplane.resolve(name, request.version)
        loaded = self._dataplane.registry.models[name].version_names()
        return model_info_to_pb(target, loaded, self._max_batch_size)
