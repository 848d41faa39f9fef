"""Hot updates against a live server: good versions swap in, bad ones never do."""

import json
import shutil
import threading
import time

import grpc
import numpy as np
import pytest

from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc
from tests.helpers.requests import random_images, v2_outputs, v2_request
from tests.helpers.tiny_models import linear_softmax, publish


def sync(server):
    server.call(server.app.manager.sync())


def served_version(stub) -> str:
    return stub.ModelInfer(v2_request(random_images(1))).model_version


def failures(server, version: str) -> float:
    value = server.app.metrics.registry.get_sample_value(
        "digits_model_load_failures_total", {"model": "cnn", "version": version}
    )
    return value or 0.0


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)


def test_new_version_is_swapped_in_and_old_one_kept_per_max_versions(server, repo, stub):
    publish(repo, "cnn", 2, linear_softmax(seed=9))
    sync(server)
    assert served_version(stub) == "2"
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="cnn"))
    assert list(meta.versions) == ["2", "1"]  # max_versions=2 keeps the previous one
    request = v2_request(random_images(1))
    request.model_version = "1"
    assert stub.ModelInfer(request).model_version == "1"
    publish(repo, "cnn", 3, linear_softmax(seed=10))
    sync(server)
    assert list(stub.ModelMetadata(pb.ModelMetadataRequest(name="cnn")).versions) == ["3", "2"]


@pytest.mark.parametrize(
    "breakage",
    ["corrupt_onnx", "hash_lies", "shape_lies", "missing_json", "bad_json", "wrong_name"],
)
def test_broken_version_is_refused_counted_and_old_keeps_serving(server, repo, stub, breakage):
    target = publish(repo, "cnn", 2, linear_softmax(seed=4))
    meta = json.loads((target / "model.json").read_text())
    if breakage == "corrupt_onnx":
        (target / "model.onnx").write_bytes(b"\x08\x01garbage" * 10)
        meta["sha256"] = (
            __import__("hashlib").sha256((target / "model.onnx").read_bytes()).hexdigest()
        )
    elif breakage == "hash_lies":
        meta["sha256"] = "0" * 64
    elif breakage == "shape_lies":
        meta["outputs"][0]["shape"] = [-1, 12]
        meta["labels"] = [str(i) for i in range(12)]
    elif breakage == "wrong_name":
        meta["name"] = "mlp16"
    if breakage == "missing_json":
        (target / "model.json").unlink()
    elif breakage == "bad_json":
        (target / "model.json").write_text("{not json")
    else:
        (target / "model.json").write_text(json.dumps(meta))
    sync(server)
    assert served_version(stub) == "1"
    assert failures(server, "2") == 1
    sync(server)  # not retried while its files are unchanged
    assert failures(server, "2") == 1
    index = {
        (m.version, m.state)
        for m in stub.RepositoryIndex(pb.RepositoryIndexRequest()).models
        if m.name == "cnn"
    }
    assert index == {("1", "READY"), ("2", "UNAVAILABLE")}
    # The next good version is picked up.
    publish(repo, "cnn", 3, linear_softmax(seed=5))
    sync(server)
    assert served_version(stub) == "3"


def test_deleting_the_serving_version_keeps_serving(server, repo, stub):
    shutil.rmtree(repo / "cnn" / "1")
    sync(server)
    assert served_version(stub) == "1"
    shutil.rmtree(repo / "cnn")
    sync(server)
    assert served_version(stub) == "1"


def test_dot_directories_are_in_progress_publishes(server, repo, stub):
    (repo / "cnn" / ".tmp-1234").mkdir()
    (repo / "cnn" / "2.partial").mkdir()
    sync(server)
    assert served_version(stub) == "1"
    assert failures(server, "2") == 0


def test_repository_control_load_and_unload(make_server, repo):
    server = make_server(model_control="on")
    with grpc.insecure_channel(server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="cnn"))
        assert not stub.ModelReady(pb.ModelReadyRequest(name="cnn")).ready
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(v2_request(random_images(1)))
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        sync(server)  # the poller leaves an explicitly unloaded model alone
        assert not stub.ModelReady(pb.ModelReadyRequest(name="cnn")).ready
        publish(repo, "cnn", 2, linear_softmax(seed=3))
        stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="cnn"))
        assert served_version(stub) == "2"
        # Names from requests are only ever looked up among scanned directories.
        for name in ("nope", "../models/cnn", "/etc", "cnn/1", ".."):
            with pytest.raises(grpc.RpcError) as info:
                stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=name))
            assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_replacing_a_version_under_load_fails_no_request(make_server, repo):
    server = make_server(repository_poll_seconds=0.2)
    images = random_images(2, seed=1)
    errors: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def client():
        with grpc.insecure_channel(server.address) as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            while not stop.is_set():
                try:
                    response = stub.ModelInfer(v2_request(images), timeout=5)
                    assert v2_outputs(response).shape == (2, 10)
                    versions.add(response.model_version)
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code()}: {exc.details()}")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for version in (2, 3, 4):
            time.sleep(0.4)
            publish(repo, "cnn", version, linear_softmax(seed=version))
        deadline = time.monotonic() + 10
        while "4" not in versions and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert {"1", "4"} <= versions


def test_in_flight_requests_finish_on_the_old_session(server, repo):
    """A swap while requests sit in the old version's queue still answers them from it."""
    app = server.app
    old = app.dataplane.resolve("cnn")
    images = random_images(3, seed=2).astype(np.float32)

    async def scenario():
        import asyncio

        pending = [
            asyncio.ensure_future(app.dataplane.infer("cnn", "", [("images", images)]))
            for _ in range(5)
        ]
        await asyncio.sleep(0)
        publish(repo, "cnn", 2, linear_softmax(seed=8))
        await app.manager.sync()
        return await asyncio.gather(*pending)

    results = server.call(scenario())
    assert {r.version for r in results} == {"1"}
    expected = old.model.run(images)
    for result in results:
        np.testing.assert_array_equal(result.outputs, expected)
    assert app.dataplane.resolve("cnn").version == "2"
