"""serving/runtime/onnx.py: which session a batch runs on, on real onnxruntime sessions."""

from __future__ import annotations

import numpy as np
import pytest

from serving.model_format import ModelManifest
from serving.runtime.onnx import OnnxModel, RuntimeConfig


def load(repo, threads: int, min_batch: int) -> OnnxModel:
    source = repo / "cnn" / "1"
    config = RuntimeConfig(provider="cpu", intra_op_threads=threads, parallel_min_batch=min_batch)
    return OnnxModel.load(source / "model.onnx", ModelManifest.read(source / "model.json"), config)


def threads_of(session) -> int:
    return session.get_session_options().intra_op_num_threads


def test_small_batches_run_on_a_one_thread_session_with_the_same_answers(repo):
    model = load(repo, threads=2, min_batch=8)
    sessions = model.sessions
    assert threads_of(sessions.parallel) == 2
    assert sessions.small is not None and threads_of(sessions.small) == 1
    assert sessions.for_batch(7) is sessions.small
    assert sessions.for_batch(8) is sessions.parallel
    images = np.random.default_rng(0).random((7, 28, 28), dtype=np.float32)
    feed = {model.manifest.input.name: images}
    names = [model.manifest.output.name]
    small = sessions.small.run(names, feed)[0]
    parallel = sessions.parallel.run(names, feed)[0]
    np.testing.assert_allclose(model.run(images), small)
    np.testing.assert_allclose(small, parallel, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("threads", "min_batch"), [(1, 32), (2, 0)])
def test_one_session_when_there_is_nothing_to_split(repo, threads, min_batch):
    sessions = load(repo, threads, min_batch).sessions
    assert sessions.small is None
    assert sessions.for_batch(1) is sessions.parallel
