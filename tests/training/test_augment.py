"""training.augment: each op on a small batch (shapes, ranges, seeds, that it changes the
image), prepare() against the server's own to_mnist, and the robust tf.data pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from serving.preprocess import to_mnist
from training.mnist import to_float

pytestmark = pytest.mark.train
tf = pytest.importorskip("tensorflow")

from training import augment  # noqa: E402  (needs TensorFlow)

OPS = [augment.affine_elastic, augment.stroke_width, augment.blur, augment.noise_and_contrast]
ALL = augment.AugmentParams(low_resolution=1.0)


@pytest.fixture(scope="module")
def batch(small_mnist) -> np.ndarray:
    return to_float(small_mnist.x_train[:16])


def _seed(a: int, b: int) -> tf.Tensor:
    return tf.constant([a, b], tf.int32)


@pytest.mark.parametrize(
    "op", [*OPS, augment.low_resolution, augment.augment_batch], ids=lambda f: f.__name__
)
def test_op_shape_range_determinism_and_effect(op, batch):
    out = op(tf.constant(batch), _seed(1, 2), ALL).numpy()
    assert out.shape == batch.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= -1e-6 and out.max() <= 1 + 1e-6
    again = op(tf.constant(batch), _seed(1, 2), ALL).numpy()
    np.testing.assert_array_equal(out, again)
    other = op(tf.constant(batch), _seed(1, 3), ALL).numpy()
    assert np.abs(out - other).mean() > 1e-3, "another seed must give other transforms"
    changed = np.abs(out - batch).reshape(len(batch), -1).mean(axis=1)
    # Every op changes most images (augment_batch leaves ~15% as raw MNIST on purpose).
    assert np.mean(changed > 1e-3) >= 0.6, changed


def test_stroke_width_thickens_and_thins(batch):
    x = tf.constant(batch)
    params = augment.AugmentParams
    thick = augment.stroke_width(x, _seed(0, 0), params(stroke=(1.5, 1.5))).numpy()
    thin = augment.stroke_width(x, _seed(0, 0), params(stroke=(-1.0, -1.0))).numpy()
    assert thick.sum() > 1.5 * batch.sum() > 1.5 * thin.sum()


def test_prepare_matches_the_servers_to_mnist(batch):
    # MNIST digits, and the same digits shrunk and moved off-centre: prepare() must undo that
    # the way serving.preprocess.to_mnist does (it resamples bilinearly, the server Lanczos).
    small = np.zeros_like(batch)
    small[:, 2:16, 10:24] = tf.image.resize(batch[..., None], (14, 14)).numpy()[..., 0]
    for images, tolerance in ((batch, 0.01), (np.clip(small, 0, 1), 0.05)):
        ours = augment.prepare(tf.constant(images)).numpy()
        server = np.stack([to_mnist(image) for image in images])
        assert np.abs(ours - server).mean() < tolerance
        rows = np.arange(28)[None, :, None]
        centre = (ours * rows).sum(axis=(1, 2)) / ours.sum(axis=(1, 2))
        np.testing.assert_allclose(centre, 13.5, atol=0.6)


def test_robust_dataset_is_seeded(small_mnist):
    x, y = to_float(small_mnist.x_train[:64]), small_mnist.y_train[:64].astype(np.int64)

    def first(seed: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = next(iter(augment.robust_dataset(x, y, 32, seed)))
        return images.numpy(), labels.numpy()

    images, labels = first(7)
    assert images.shape == (32, 28, 28) and labels.shape == (32,)
    np.testing.assert_array_equal(images, first(7)[0])
    assert np.abs(images - first(8)[0]).mean() > 1e-3
    # Two epochs of one dataset see different transforms of the same 64 images (compared
    # independently of their order, which reshuffling also changes).
    ds = augment.robust_dataset(x, y, 64, 7)
    epoch1, epoch2 = (np.sort(next(iter(ds))[0].numpy().sum(axis=(1, 2))) for _ in range(2))
    assert np.abs(epoch1 - epoch2).max() > 0.5


def test_european_one_flags_only_ones_and_is_seeded(small_mnist):
    # 16 ones and 16 other digits, in an interleaved order.
    y_all = small_mnist.y_train
    ones, others = np.flatnonzero(y_all == 1)[:16], np.flatnonzero(y_all != 1)[:16]
    order = np.stack([ones, others], axis=1).ravel()
    x, y = to_float(small_mnist.x_train[order]), y_all[order].astype(np.int64)
    params = augment.AugmentParams(one_flag=1.0, one_foot=0.0)

    def flag(seed: tf.Tensor, p: augment.AugmentParams = params) -> np.ndarray:
        return augment.european_one(tf.constant(x), tf.constant(y), seed, p).numpy()

    out = flag(_seed(1, 2))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out[y != 1], x[y != 1])
    np.testing.assert_array_equal(out, flag(_seed(1, 2)))
    assert np.abs(out - flag(_seed(1, 3))).mean() > 1e-4, "another seed draws other flags"
    # Ink is only ever added, and every 1 gets a stroke of a few pixels' worth of ink ...
    added = (out - x)[y == 1]
    assert added.min() >= 0.0
    assert (added.sum(axis=(1, 2)) > 2.0).all(), added.sum(axis=(1, 2))
    # ... that starts at the bar's top and runs down to its left (a flag, not a 7's bar).
    cols, rows = np.arange(28), np.arange(28)[None, :, None]
    flag_col = (added * cols).sum(axis=(1, 2)) / added.sum(axis=(1, 2))
    flag_row = (added * rows).sum(axis=(1, 2)) / added.sum(axis=(1, 2))
    for image, col, row in zip(x[y == 1], flag_col, flag_row, strict=True):
        top = np.flatnonzero((image > 0.5).any(axis=1))[0]
        top_col = (image[top] * cols).sum() / image[top].sum()
        assert col < top_col and top < row < top + 12, (col, top_col, row, top)
    # one_flag=0 leaves the whole batch alone.
    none = flag(_seed(1, 2), augment.AugmentParams(one_flag=0.0))
    np.testing.assert_array_equal(none, x)
    # A foot adds ink below the digit's lowest third.
    feet = flag(_seed(1, 2), augment.AugmentParams(one_flag=1.0, one_foot=1.0))
    assert (feet - out)[y == 1][:, 19:].sum() > 0.5 * len(ones)
