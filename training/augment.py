"""Augmentation for the ``robust`` model, as batched TensorFlow ops for a tf.data pipeline.

Every op takes a float32 batch ``[B,28,28]`` in [0,1] (white digit on black) and, where it is
random, a stateless seed (int32 ``[2]``), so a pipeline seeded once is repeatable. The ops work
on whole batches (one gather per resampling) because a per-image ``map`` costs more than the
training step of a small CNN.

:func:`european_one` is the one op that looks at labels: it draws a flag (and sometimes a foot)
onto some of the 1s, a way of writing a 1 that MNIST's bare bars hardly show.

:func:`prepare` re-implements ``serving.preprocess.to_mnist`` (contrast stretch, crop to ink,
scale into a 20x20 box, centre by mass) so that training sees what the server produces from a
drawing or a photo. Differences: bilinear instead of Lanczos resampling, and no polarity flip
(training images are always white on black).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_PARAMS",
    "AugmentParams",
    "affine_elastic",
    "augment_batch",
    "blur",
    "european_one",
    "low_resolution",
    "noise_and_contrast",
    "prepare",
    "robust_dataset",
    "stroke_width",
]

SIZE = 28
_CENTRE = (SIZE - 1) / 2.0  # 13.5, the same centre serving.preprocess uses
_BOX = 20.0
_INK_THRESHOLD = 0.25  # serving.preprocess._INK_THRESHOLD
_LOW_PERCENTILE = 5.0


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of the random transforms (each image draws its own values, uniformly)."""

    rotation_degrees: float = 18.0
    shear: float = 0.35
    scale: tuple[float, float] = (0.75, 1.15)
    aspect: float = 0.2  # +- relative change of width vs height
    shift_pixels: float = 3.0
    elastic_alpha: float = 25.0  # displacement scale (Simard et al. 2003: 34 at sigma 4)
    elastic_sigma: float = 4.0
    # Stroke width as a level on erode(-1) .. original(0) .. dilate(1) .. dilate twice(2).
    stroke: tuple[float, float] = (-0.7, 2.0)
    blur: float = 0.7  # max blend towards a sigma-1 Gaussian blur
    noise: float = 0.04  # max Gaussian noise sigma
    contrast: tuple[float, float] = (0.5, 1.0)
    background: float = 0.2  # max added grey level (a photo's paper after inversion)
    gradient: float = 0.2  # max grey-level change across the image (uneven lighting)
    # A fraction of each batch is reduced to a small square (side drawn per batch) and enlarged
    # back, like a tiny scan or a low-resolution photo that the server scales up.
    low_resolution: float = 0.3
    low_resolution_side: tuple[int, int] = (7, 16)
    clean_fraction: float = 0.15  # images left exactly as MNIST has them
    # MNIST's 1s are nearly all a bare bar; many writers (most of Europe) start a 1 with a long
    # flag down to the left, sometimes with a foot. A fraction of the 1s get one drawn on.
    one_flag: float = 0.3
    flag_length: tuple[float, float] = (0.25, 0.55)  # of the digit's ink height
    flag_angle_degrees: tuple[float, float] = (15.0, 60.0)  # below the horizontal
    one_foot: float = 0.3  # of the flagged 1s
    foot_half_length: tuple[float, float] = (0.12, 0.25)  # of the ink height


DEFAULT_PARAMS = AugmentParams()


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _grid() -> tuple[Any, Any]:
    """Pixel-centre coordinates (rows, cols), each [28,28] float32."""
    tf = _tf()
    coords = tf.range(SIZE, dtype=tf.float32)
    rows, cols = tf.meshgrid(coords, coords, indexing="ij")
    return rows, cols


def _sample(images: Any, src_rows: Any, src_cols: Any) -> Any:
    """Bilinear resampling: out[b,i,j] = images[b] at (src_rows, src_cols)[b,i,j]; 0 outside."""
    tf = _tf()
    batch = tf.shape(images)[0]
    # One extra zero pixel at index 784 stands for everything outside the image.
    flat = tf.concat([tf.reshape(images, [batch, SIZE * SIZE]), tf.zeros([batch, 1])], axis=1)
    row0, col0 = tf.floor(src_rows), tf.floor(src_cols)
    w_row, w_col = src_rows - row0, src_cols - col0
    row0, col0 = tf.cast(row0, tf.int32), tf.cast(col0, tf.int32)

    def tap(r: Any, c: Any) -> Any:
        inside = (r >= 0) & (r < SIZE) & (c >= 0) & (c < SIZE)
        index = tf.where(inside, r * SIZE + c, SIZE * SIZE)
        values = tf.gather(flat, tf.reshape(index, [batch, -1]), batch_dims=1)
        return tf.reshape(values, tf.shape(src_rows))

    return (
        (1 - w_row) * (1 - w_col) * tap(row0, col0)
        + (1 - w_row) * w_col * tap(row0, col0 + 1)
        + w_row * (1 - w_col) * tap(row0 + 1, col0)
        + w_row * w_col * tap(row0 + 1, col0 + 1)
    )


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def _gaussian_blur(x: Any, sigma: float) -> Any:
    """Separable Gaussian blur of [B,H,W,C] (zero padding), channels blurred independently."""
    tf = _tf()
    taps = tf.constant(_gaussian_kernel(sigma))
    channels = x.shape[-1]
    along_rows = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    along_cols = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    x = tf.nn.depthwise_conv2d(x, along_rows, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(x, along_cols, [1, 1, 1, 1], "SAME")


def _uniform(seed: Any, batch: Any, low: float, high: float, salt: int) -> Any:
    """Per-image uniform values [B,1,1]; ``salt`` keeps the draws of different ops apart."""
    tf = _tf()
    seed = tf.cast(seed, tf.int32) + tf.constant([0, salt * 7919], tf.int32)
    return tf.random.stateless_uniform([batch, 1, 1], seed, low, high)


def affine_elastic(images: Any, seed: Any, params: AugmentParams = DEFAULT_PARAMS) -> Any:
    """Random rotation, shear, scale, aspect and shift, plus an elastic distortion, in one
    resampling. Each image gets its own transform; the elastic field is smoothed noise."""
    tf = _tf()
    batch = tf.shape(images)[0]
    angle = _uniform(seed, batch, -1.0, 1.0, 1) * math.radians(params.rotation_degrees)
    shear = _uniform(seed, batch, -params.shear, params.shear, 2)
    scale = _uniform(seed, batch, *params.scale, 3)
    aspect = _uniform(seed, batch, -params.aspect, params.aspect, 4)
    shift_r = _uniform(seed, batch, -params.shift_pixels, params.shift_pixels, 5)
    shift_c = _uniform(seed, batch, -params.shift_pixels, params.shift_pixels, 6)
    # Forward map A = rotation @ shear @ diag(scale_rows, scale_cols) on (row, col) around the
    # centre; sampling needs its inverse, written out for a 2x2 matrix.
    cos, sin = tf.cos(angle), tf.sin(angle)
    s_rows, s_cols = scale * (1 + aspect), scale * (1 - aspect)
    a00, a01 = cos * s_rows, (cos * shear - sin) * s_cols
    a10, a11 = sin * s_rows, (sin * shear + cos) * s_cols
    det = a00 * a11 - a01 * a10
    rows, cols = _grid()
    d_rows, d_cols = rows - _CENTRE - shift_r, cols - _CENTRE - shift_c
    src_rows = (a11 * d_rows - a01 * d_cols) / det + _CENTRE
    src_cols = (-a10 * d_rows + a00 * d_cols) / det + _CENTRE

    field_seed = tf.cast(seed, tf.int32) + tf.constant([0, 104729], tf.int32)
    field = tf.random.stateless_uniform([batch, SIZE, SIZE, 2], field_seed, -1.0, 1.0)
    field = _gaussian_blur(field, params.elastic_sigma)
    alpha = _uniform(seed, batch, 0.0, params.elastic_alpha, 7)
    return _sample(images, src_rows + alpha * field[..., 0], src_cols + alpha * field[..., 1])


def _dilate(x: Any) -> Any:
    tf = _tf()
    return tf.nn.max_pool2d(x[..., None], 3, 1, "SAME")[..., 0]


def stroke_width(images: Any, seed: Any, params: AugmentParams = DEFAULT_PARAMS) -> Any:
    """Thinner or thicker strokes: a per-image level interpolated between erode (-1), the
    image (0), dilate (1) and dilate twice (2) with a 3x3 window."""
    tf = _tf()
    batch = tf.shape(images)[0]
    level = _uniform(seed, batch, *params.stroke, 8)
    eroded = -_dilate(-images)
    dilated = _dilate(images)
    dilated2 = _dilate(dilated)
    thinner = images + (-level) * (eroded - images)
    thicker = images + level * (dilated - images)
    thickest = dilated + (level - 1) * (dilated2 - dilated)
    return tf.where(level < 0, thinner, tf.where(level <= 1, thicker, thickest))


def blur(images: Any, seed: Any, params: AugmentParams = DEFAULT_PARAMS) -> Any:
    """Blend each image towards its sigma-1 Gaussian blur by a random amount."""
    tf = _tf()
    batch = tf.shape(images)[0]
    amount = _uniform(seed, batch, 0.0, params.blur, 9)
    blurred = _gaussian_blur(images[..., None], 1.0)[..., 0]
    return images + amount * (blurred - images)


def noise_and_contrast(images: Any, seed: Any, params: AugmentParams = DEFAULT_PARAMS) -> Any:
    """Lower contrast, a grey background and Gaussian pixel noise, clipped to [0,1]."""
    tf = _tf()
    batch = tf.shape(images)[0]
    contrast = _uniform(seed, batch, *params.contrast, 10)
    background = _uniform(seed, batch, 0.0, params.background, 11)
    sigma = _uniform(seed, batch, 0.0, params.noise, 12)
    slope = _uniform(seed, batch, 0.0, params.gradient, 14)
    direction = _uniform(seed, batch, 0.0, 2 * math.pi, 15)
    rows, cols = _grid()
    ramp = (tf.cos(direction) * cols + tf.sin(direction) * rows) / (SIZE - 1) - 0.5
    noise_seed = tf.cast(seed, tf.int32) + tf.constant([0, 15485863], tf.int32)
    noise = tf.random.stateless_normal(tf.shape(images), noise_seed)
    lit = background + slope * ramp + contrast * images + sigma * noise
    return tf.clip_by_value(lit, 0.0, 1.0)


def low_resolution(images: Any, seed: Any, params: AugmentParams = DEFAULT_PARAMS) -> Any:
    """Shrink some images to a small square (area average) and enlarge them back (bilinear)."""
    tf = _tf()
    batch = tf.shape(images)[0]
    low, high = params.low_resolution_side
    side_seed = tf.cast(seed, tf.int32) + tf.constant([0, 32452843], tf.int32)
    side = tf.random.stateless_uniform([], side_seed, low, high + 1, dtype=tf.int32)
    small = tf.image.resize(images[..., None], tf.stack([side, side]), method="area")
    back = tf.image.resize(small, [SIZE, SIZE], method="bilinear")[..., 0]
    chosen = _uniform(seed, batch, 0.0, 1.0, 16) < params.low_resolution
    return tf.where(chosen, tf.clip_by_value(back, 0.0, 1.0), images)


def _segment(row0: Any, col0: Any, row1: Any, col1: Any, width: Any) -> Any:
    """Anti-aliased straight strokes [B,28,28] from (row0, col0) to (row1, col1), each [B,1,1],
    ``width`` pixels wide with round ends (ink 1 within width/2 of the segment, a 1-px ramp)."""
    tf = _tf()
    rows, cols = _grid()
    d_row, d_col = row1 - row0, col1 - col0
    length2 = tf.maximum(d_row * d_row + d_col * d_col, 1e-6)
    along = tf.clip_by_value(((rows - row0) * d_row + (cols - col0) * d_col) / length2, 0.0, 1.0)
    dist = tf.sqrt((rows - row0 - along * d_row) ** 2 + (cols - col0 - along * d_col) ** 2)
    return tf.clip_by_value(width / 2 + 0.5 - dist, 0.0, 1.0)


def european_one(
    images: Any, labels: Any, seed: Any, params: AugmentParams = DEFAULT_PARAMS
) -> Any:
    """Draw a flag (and sometimes a foot serif) onto a random ``one_flag`` share of the 1s.

    The flag starts at the top of the ink and runs down to the left at a random angle and
    length; its width is the digit's own mean stroke width (ink per inked row). A foot is a
    horizontal bar centred under the bottom of the ink. Other labels are returned unchanged.
    """
    tf = _tf()
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[0]
    ink = images > 0.5
    rows_on = tf.reduce_any(ink, axis=2)
    top = tf.cast(_first_true(rows_on), tf.float32)[:, None, None]
    bottom = tf.cast(SIZE - 1 - _first_true(tf.reverse(rows_on, [1])), tf.float32)[:, None, None]
    height = tf.maximum(bottom - top + 1, 1.0)
    inked_rows = tf.maximum(tf.reduce_sum(tf.cast(rows_on, tf.float32), axis=1), 1.0)
    width = tf.clip_by_value(tf.reduce_sum(images, axis=[1, 2]) / inked_rows, 1.0, 5.0)[
        :, None, None
    ]
    rows, _ = _grid()
    cols = tf.range(SIZE, dtype=tf.float32)

    def centre_column(row: Any) -> Any:
        # Ink-weighted column of the two rows starting at `row` (where the stroke ends).
        band = tf.cast((rows >= row) & (rows < row + 2), tf.float32) * images
        return tf.reduce_sum(band * cols, axis=[1, 2], keepdims=True) / tf.maximum(
            tf.reduce_sum(band, axis=[1, 2], keepdims=True), 1e-6
        )

    top_col = centre_column(top)
    angle = tf.constant(math.pi / 180.0) * _uniform(seed, batch, *params.flag_angle_degrees, 17)
    length = height * _uniform(seed, batch, *params.flag_length, 18)
    # Start half a stroke inside the ink so the flag joins the bar without a gap.
    start_row = top + width / 2
    flag = _segment(
        start_row,
        top_col,
        start_row + length * tf.sin(angle),
        top_col - length * tf.cos(angle),
        width,
    )
    bottom_row = bottom - width / 2
    bottom_col = centre_column(bottom - 1)
    half = height * _uniform(seed, batch, *params.foot_half_length, 19)
    foot = _segment(bottom_row, bottom_col - half, bottom_row, bottom_col + half, width)
    with_foot = _uniform(seed, batch, 0.0, 1.0, 20) < params.one_foot
    drawn = tf.maximum(images, tf.maximum(flag, tf.where(with_foot, foot, 0.0)))
    is_one = tf.reshape(tf.equal(tf.cast(labels, tf.int32), 1), [-1, 1, 1])
    chosen = is_one & (_uniform(seed, batch, 0.0, 1.0, 21) < params.one_flag)
    return tf.where(chosen, drawn, images)


def _first_true(mask: Any) -> Any:
    tf = _tf()
    return tf.argmax(tf.cast(mask, tf.int32), axis=1, output_type=tf.int32)


def prepare(images: Any) -> Any:
    """What ``serving.preprocess.to_mnist`` does to an image, for a batch in TensorFlow.

    Stretch contrast (5th percentile -> 0, max -> 1), keep the bounding box of pixels above
    0.25, scale it (aspect kept) so its longer side is 20 px, place it in the middle of a 28x28
    field, then shift it by whole pixels so its centre of mass is at (13.5, 13.5).
    """
    tf = _tf()
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[0]
    ordered = tf.sort(tf.reshape(images, [batch, SIZE * SIZE]), axis=1)
    # np.percentile's default (linear) interpolation between the two neighbouring ranks.
    position = _LOW_PERCENTILE / 100.0 * (SIZE * SIZE - 1)
    below, frac = int(position), position - int(position)
    low = ordered[:, below] * (1 - frac) + ordered[:, below + 1] * frac
    high = ordered[:, -1]
    span = tf.maximum(high - low, 1e-6)[:, None, None]
    ink = tf.clip_by_value((images - low[:, None, None]) / span, 0.0, 1.0)

    mask = ink > _INK_THRESHOLD
    rows_on, cols_on = tf.reduce_any(mask, axis=2), tf.reduce_any(mask, axis=1)
    top = _first_true(rows_on)
    bottom = SIZE - 1 - _first_true(tf.reverse(rows_on, [1]))
    left = _first_true(cols_on)
    right = SIZE - 1 - _first_true(tf.reverse(cols_on, [1]))
    index = tf.range(SIZE)
    in_rows = (index[None, :] >= top[:, None]) & (index[None, :] <= bottom[:, None])
    in_cols = (index[None, :] >= left[:, None]) & (index[None, :] <= right[:, None])
    ink = ink * tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)

    height = tf.cast(bottom - top + 1, tf.float32)
    width = tf.cast(right - left + 1, tf.float32)
    scale = _BOX / tf.maximum(height, width)
    new_h = tf.maximum(1.0, tf.round(height * scale))
    new_w = tf.maximum(1.0, tf.round(width * scale))
    dst_top = tf.floor((SIZE - new_h) / 2)
    dst_left = tf.floor((SIZE - new_w) / 2)
    rows, cols = _grid()

    def source(grid: Any, dst: Any, new: Any, old: Any, origin: Any) -> Any:
        # Pixel-centre mapping of a resize from `old` to `new` pixels (as PIL does);
        # positions outside the pasted box map far outside the image, i.e. to 0.
        d, n, o = dst[:, None, None], new[:, None, None], old[:, None, None]
        src = tf.cast(origin, tf.float32)[:, None, None] + (grid - d + 0.5) * o / n - 0.5
        return tf.where((grid >= d) & (grid < d + n), src, -2.0 * SIZE)

    field = _sample(
        ink,
        source(rows, dst_top, new_h, height, top),
        source(cols, dst_left, new_w, width, left),
    )
    total = tf.maximum(tf.reduce_sum(field, axis=[1, 2]), 1e-6)
    mass_row = tf.reduce_sum(field * rows, axis=[1, 2]) / total
    mass_col = tf.reduce_sum(field * cols, axis=[1, 2]) / total
    shift_row = tf.round(_CENTRE - mass_row)[:, None, None]
    shift_col = tf.round(_CENTRE - mass_col)[:, None, None]
    return _sample(field, rows - shift_row, cols - shift_col)


def augment_batch(images: Any, seed: Any, params: AugmentParams = DEFAULT_PARAMS) -> Any:
    """The robust model's training transform: geometry, strokes, blur, resolution, noise and
    lighting, then the server's preparation (for all but ``clean_fraction`` of the images)."""
    tf = _tf()
    seed = tf.cast(seed, tf.int32)
    out = affine_elastic(images, seed, params)
    out = stroke_width(out, seed + tf.constant([0, 1], tf.int32), params)
    out = blur(out, seed + tf.constant([0, 2], tf.int32), params)
    out = low_resolution(out, seed + tf.constant([0, 4], tf.int32), params)
    out = noise_and_contrast(out, seed + tf.constant([0, 3], tf.int32), params)
    # Some images stay raw MNIST: the typed API also takes 28x28 pixels that skip the
    # server's preparation, and MNIST's own centring differs from it by about a pixel.
    keep = _uniform(seed, tf.shape(images)[0], 0.0, 1.0, 13) < params.clean_fraction
    return tf.where(keep, images, prepare(out))


def robust_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int,
    params: AugmentParams = DEFAULT_PARAMS,
) -> Any:
    """Shuffled, augmented training batches; fresh random transforms every epoch.

    Each batch takes its stateless seed from a seeded random stream that is redrawn on every
    iteration, so two runs with the same ``seed`` see the same images in the same order.
    """
    tf = _tf()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    images = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
    )

    def transform(batch: tuple[Any, Any], pair: Any) -> tuple[Any, Any]:
        pixels, labels = batch
        batch_seed = tf.cast(pair % (2**31 - 1), tf.int32)
        # The flag goes on before the geometry so it is slanted, warped and prepared with the
        # digit it belongs to.
        pixels = european_one(pixels, labels, batch_seed + tf.constant([0, 5], tf.int32), params)
        return augment_batch(pixels, batch_seed, params), labels

    return (
        tf.data.Dataset.zip((images, seeds))
        .map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
