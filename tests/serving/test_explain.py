"""Occlusion saliency as pure numpy: masks, the one-batch plan, and scores against a
window-by-window reference written the slow, obvious way (Captum's definition)."""

from __future__ import annotations

import numpy as np
import pytest

from serving.explain import SIDE, Occlusion, occlusion_plan, window_masks


def linear_model(weights: np.ndarray):
    """A toy classifier: softmax of a fixed linear map of the 784 pixels."""

    def run(images: np.ndarray) -> np.ndarray:
        logits = images.reshape(len(images), -1).astype(np.float64) @ weights
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    return run


def reference_map(image: np.ndarray, model, occlusion: Occlusion) -> np.ndarray:
    """One model call per window, every window (blank ones too), pixel = mean over windows."""
    base = model(image[None])[0]
    target = int(base.argmax())
    total = np.zeros((SIDE, SIDE))
    count = np.zeros((SIDE, SIDE))
    w = occlusion.window
    for row in range(0, SIDE - w + 1, occlusion.stride):
        for col in range(0, SIDE - w + 1, occlusion.stride):
            masked = image.copy()
            masked[row : row + w, col : col + w] = occlusion.baseline
            drop = base[target] - model(masked[None])[0, target]
            total[row : row + w, col : col + w] += drop
            count[row : row + w, col : col + w] += 1
    return total / count


def digit_like(seed: int) -> np.ndarray:
    """A blob of 'ink' in the middle of a black 28x28, like an MNIST digit."""
    rng = np.random.default_rng(seed)
    image = np.zeros((SIDE, SIDE), dtype=np.float32)
    image[6:22, 9:19] = rng.random((16, 10)) > 0.4
    return image


def test_masks_cover_every_pixel_as_often_as_captum_counts():
    masks, cover = window_masks(Occlusion(window=4, stride=2))
    assert masks.shape == (169, 784) and masks.sum(axis=1).tolist() == [16] * 169
    cover = cover.reshape(SIDE, SIDE)
    # Corners lie in one window, edges in two, the interior (stride 2, window 4) in four.
    assert cover[0, 0] == 1 and cover[0, 27] == 1 and cover[0, 2] == 2 and cover[13, 13] == 4
    assert cover.min() >= 1


@pytest.mark.parametrize(("window", "stride"), [(5, 2), (3, 2), (0, 1), (4, 0)])
def test_windows_that_leave_pixels_unscored_are_refused(window, stride):
    with pytest.raises(ValueError):
        Occlusion(window=window, stride=stride)


def test_plan_puts_each_image_first_then_only_its_inked_windows():
    images = np.stack([digit_like(1), np.zeros((SIDE, SIDE), np.float32), digit_like(2)])
    plan = occlusion_plan(images)
    masks, _ = window_masks(plan.occlusion)
    assert len(plan.windows[1]) == 0  # a blank image changes under no window
    assert plan.starts.tolist() == [0, 1 + len(plan.windows[0]), 2 + len(plan.windows[0])]
    assert len(plan.inputs) == 3 + sum(len(w) for w in plan.windows)
    assert np.array_equal(plan.inputs[plan.originals], images)
    for n, image in enumerate(images):
        flat = image.reshape(-1)
        for k, window in enumerate(plan.windows[n]):
            copy = plan.inputs[plan.starts[n] + 1 + k].reshape(-1)
            assert np.array_equal(copy[masks[window]], np.zeros(16))
            assert np.array_equal(copy[~masks[window]], flat[~masks[window]])
            assert flat[masks[window]].any(), "a blank window was sent to the model"


@pytest.mark.parametrize("occlusion", [Occlusion(), Occlusion(window=7, stride=3)])
def test_maps_equal_the_window_by_window_reference(occlusion):
    rng = np.random.default_rng(0)
    model = linear_model(rng.normal(size=(784, 10)) * 0.3)
    images = np.stack([digit_like(seed) for seed in range(4)])
    plan = occlusion_plan(images, occlusion)
    probabilities = model(plan.inputs)
    predicted = probabilities[plan.originals].argmax(axis=1)
    maps = plan.saliency(probabilities, predicted)
    assert maps.shape == (4, SIDE, SIDE) and maps.dtype == np.float32
    for image, got in zip(images, maps, strict=True):
        expected = reference_map(image, model, occlusion)
        assert np.abs(expected).max() > 1e-3, "the toy model ignores the image"
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_the_map_is_hot_where_the_model_looks():
    # Class 1 wins only through the pixels of one 4x4 patch: blanking them is what hurts.
    weights = np.zeros((784, 2))
    patch = np.zeros((SIDE, SIDE), dtype=bool)
    patch[12:16, 12:16] = True
    weights[patch.reshape(-1), 1] = 1.0
    image = np.zeros((SIDE, SIDE), dtype=np.float32)
    image[4:24, 4:24] = 1.0
    plan = occlusion_plan(image[None])
    probabilities = linear_model(weights)(plan.inputs)
    (saliency,) = plan.saliency(probabilities, np.array([1]))
    assert saliency[patch].min() > 0
    assert np.array_equal(saliency[~patch] > saliency[patch].min(), np.zeros((~patch).sum()))
