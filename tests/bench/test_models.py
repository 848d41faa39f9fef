"""The benchmark's models: the null model, the stand-ins and the repository."""

import numpy as np
import onnxruntime as ort
import pytest

from bench.models import build_repository, cnn_standin, mlp100_standin, null_model


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x})[0]


def test_null_model_is_softmax_of_the_first_pixels():
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    out = _run(null_model(), x)
    first = x.reshape(3, -1)[:, :10]
    expected = np.exp(first) / np.exp(first).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("build", [mlp100_standin, cnn_standin])
def test_standins_give_probabilities(build):
    out = _run(build(), np.random.default_rng(1).random((4, 28, 28), dtype=np.float32))
    assert out.shape == (4, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1, atol=1e-5)


def test_repository_uses_shipped_models_when_present(tmp_path):
    shipped = tmp_path / "shipped"
    build_repository(shipped, tmp_path / "nothing")  # stand-ins laid out like shipped models
    sources = build_repository(tmp_path / "bench", shipped)
    assert sources["mlp100"].startswith("shipped") and sources["cnn"].startswith("shipped")
    assert (tmp_path / "bench" / "null" / "1" / "model.json").is_file()
