"""``digits.v1.DigitClassifier``: thin adapter from the typed API onto the data plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc as pb_grpc
from serving.dataplane import DataPlane, deadline_from_remaining
from serving.errors import InvalidInput
from serving.feedback.service import FeedbackService
from serving.grpc.feedback import feedback
from serving.grpc.read_converters import read_response_to_pb
from serving.grpc.status import status_of
from serving.grpc.streaming import pump
from serving.grpc.typed_converters import (
    model_info_to_pb,
    policy_to_pb,
    raw_images,
    response_to_pb,
    serving_action,
)
from serving.request_context import client_message, current_request_id, note_model


class TypedServicer(pb_grpc.DigitClassifierServicer):
    """Classify digits; list and describe models; shadow, promote and roll back versions."""

    def __init__(
        self,
        dataplane: DataPlane,
        max_stream_inflight: int,
        feedback: FeedbackService | None = None,
    ) -> None:
        self._dataplane = dataplane
        self._max_inflight = max_stream_inflight
        self._feedback = feedback

    async def _classify(
        self, request: pb.ClassifyRequest, remaining: float | None, answer_id: str = ""
    ) -> pb.ClassifyResponse:
        # ``answer_id``: the id the answer is kept under for feedback (and carries back).
        deadline = deadline_from_remaining(remaining)
        which = request.WhichOneof("images")
        if which == "raw":
            result = await self._dataplane.classify_pixels(
                request.model,
                request.version,
                raw_images(request.raw),
                deadline,
                explain=request.explain,
                answer_id=answer_id,
            )
        elif which == "encoded":
            result = await self._dataplane.classify_encoded(
                request.model,
                request.version,
                list(request.encoded.images),
                deadline,
                explain=request.explain,
                answer_id=answer_id,
            )
        else:
            raise InvalidInput("request has no images: set raw or encoded")
        note_model(result.model, result.version)
        return response_to_pb(result, answer_id or request.request_id)

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        # The client's request_id, else the call's own: feedback names the answer by it.
        answer_id = request.request_id or current_request_id()
        return await self._classify(request, context.time_remaining(), answer_id)

    async def ClassifyStream(
        self, requests: AsyncIterator[pb.ClassifyRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ClassifyStreamResponse]:
        stream_id = current_request_id()

        async def handle(request: pb.ClassifyRequest) -> pb.ClassifyStreamResponse:
            # Only answers the client named can be named again in feedback.
            return pb.ClassifyStreamResponse(
                response=await self._classify(request, context.time_remaining(), request.request_id)
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
        return pb.ListModelsResponse(
            models=[model_info_to_pb(m) for m in self._dataplane.list_models()]
        )

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return model_info_to_pb(self._dataplane.model_info(request.model, request.version))

    async def Feedback(
        self, request: pb.FeedbackRequest, context: grpc.aio.ServicerContext
    ) -> pb.FeedbackResponse:
        response = await feedback(self._feedback, request)
        note_model(response.model, response.version)
        return response

    async def Read(
        self, request: pb.ReadRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReadResponse:
        deadline = deadline_from_remaining(context.time_remaining())
        result = await self._dataplane.read(request.model, request.version, request.image, deadline)
        note_model(result.model, result.version)
        return read_response_to_pb(result, request.request_id)

    async def ChangeServing(
        self, request: pb.ChangeServingRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServingPolicy:
        # The core checks repository control and the rules, and replicates to the workers.
        action = serving_action(request.action)
        model = request.model or self._dataplane.default_model
        policy = await self._dataplane.change_policy(model, action, request.version)
        return policy_to_pb(model, policy)
