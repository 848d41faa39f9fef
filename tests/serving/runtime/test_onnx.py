"""serving/runtime/onnx.py: which session a batch runs on, on real onnxruntime sessions."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from serving.model_format import InstanceGroup, ModelManifest
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


def test_instance_plan_splits_the_cpu_budget_unless_told_otherwise():
    config = RuntimeConfig(provider="cpu", intra_op_threads=2, instances=2, cpu_budget=4)
    assert config.instance_plan(None) == (2, 2)
    assert config.instance_plan(InstanceGroup(4)) == (4, 1)
    assert config.instance_plan(InstanceGroup(1)) == (1, 4)
    assert config.instance_plan(InstanceGroup(8)) == (8, 1)
    assert config.instance_plan(InstanceGroup(2, 3)) == (2, 3)
    fixed = RuntimeConfig(
        provider="cpu", intra_op_threads=2, instances=2, cpu_budget=4, threads_fixed=True
    )
    assert fixed.instance_plan(InstanceGroup(4)) == (4, 2)


def test_each_batch_computing_at_once_takes_an_instance_of_its_own(repo):
    source = repo / "cnn" / "1"
    manifest = ModelManifest.read(source / "model.json").replace(instances=InstanceGroup(2, 1))
    config = RuntimeConfig(provider="cpu", intra_op_threads=2, cpu_budget=2)
    model = OnnxModel.load(source / "model.onnx", manifest, config)
    assert model.instance_count == 2 and model.threads == 1
    assert [threads_of(s.parallel) for s in model.instances] == [1, 1]
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    expected = model.run(images)
    # With one instance held by a batch in flight, the next batch runs on the other one...
    held = model._free.get()
    try:
        np.testing.assert_allclose(model.run(images), expected, rtol=1e-5)
        # ...and with both held, a batch waits for a free instance instead of sharing one.
        other = model._free.get()
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (model.run(images), done.set()))
        waiter.start()
        assert not done.wait(0.2)
        model._free.put(other)
        assert done.wait(10)
        waiter.join()
    finally:
        model._free.put(held)


def test_batches_one_after_another_reuse_the_instance_used_last(repo):
    source = repo / "cnn" / "1"
    manifest = ModelManifest.read(source / "model.json").replace(instances=InstanceGroup(3, 1))
    model = OnnxModel.load(source / "model.onnx", manifest, RuntimeConfig(provider="cpu"))
    used = []
    for instance in model.instances:
        original = instance.for_batch
        instance.for_batch = lambda n, i=instance, f=original: (used.append(i), f(n))[1]
    images = np.zeros((2, 28, 28), dtype=np.float32)
    for _ in range(5):
        model.run(images)
    # Its weights stay warm in the caches: never a round robin over the copies.
    assert used == [model.instances[0]] * 5
