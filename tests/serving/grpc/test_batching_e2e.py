"""Dynamic batching seen from outside: concurrent clients, real sessions, metrics."""

import random
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import onnxruntime as ort

from serving.api import digits_pb2_grpc, open_inference_pb2_grpc
from tests.helpers.requests import (
    random_images,
    typed_probabilities,
    typed_request,
    v2_outputs,
    v2_request,
)


def batch_stats(server) -> tuple[float, float]:
    registry = server.app.metrics.registry
    labels = {"model": "cnn", "version": "1"}
    count = registry.get_sample_value("digits_batch_size_count", labels) or 0
    total = registry.get_sample_value("digits_batch_size_sum", labels) or 0
    return count, total


def reference_session(server) -> ort.InferenceSession:
    path = server.app.settings.model_repository / "cnn" / "1" / "model.onnx"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_concurrent_single_image_requests_form_batches(make_server):
    # A generous delay makes batching certain regardless of machine speed.
    server = make_server(max_queue_delay_us=20_000, max_batch_size=32)
    images = random_images(64, seed=11)
    with grpc.insecure_channel(server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        futures = [stub.ModelInfer.future(v2_request(images[i : i + 1])) for i in range(64)]
        outputs = [v2_outputs(f.result(timeout=30)) for f in futures]
    count, total = batch_stats(server)
    assert total == 64
    assert count < 64, f"{count} batches for 64 requests: no batching happened"
    session = reference_session(server)
    for i, out in enumerate(outputs):
        # Compared with the same image run alone in-process: batching must not
        # change any request's answer (nor hand it another request's rows).
        expected = session.run(None, {"images": images[i : i + 1]})[0]
        np.testing.assert_array_equal(out, expected)
        assert out.argmax() == expected.argmax()


def test_mixed_sizes_on_both_apis_get_exactly_their_rows(make_server):
    server = make_server(max_queue_delay_us=5_000, max_batch_size=16)
    rng = random.Random(3)
    jobs = []
    for i in range(60):
        n = rng.randint(1, 9)
        jobs.append((i, "v2" if i % 2 else "typed", random_images(n, seed=100 + i)))
    session = reference_session(server)

    with grpc.insecure_channel(server.address) as channel:
        v2 = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        typed = digits_pb2_grpc.DigitClassifierStub(channel)

        def run(job):
            i, api, images = job
            if api == "v2":
                return v2_outputs(v2.ModelInfer(v2_request(images), timeout=30))
            response = typed.Classify(typed_request(images, model="cnn", request_id=str(i)))
            assert response.request_id == str(i)
            return typed_probabilities(response)

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(run, jobs))
    for (_, _, images), out in zip(jobs, results, strict=True):
        assert out.shape == (images.shape[0], 10)
        expected = session.run(None, {"images": images})[0]
        np.testing.assert_array_equal(out, expected)
    count, total = batch_stats(server)
    assert total == sum(job[2].shape[0] for job in jobs)
    assert count < len(jobs)
