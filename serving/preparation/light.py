"""Steps 3-4: RGB -> a grey image with light paper, then the light flattened out.

Why in this order: the ink threshold (next step) must be picked on an image where paper has
one brightness everywhere. A threshold picked before the light is flattened is picked on the
shadow: the dim half of the sheet then counts as ink.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

# The background is estimated on a copy at most this many pixels on its longer side: the
# light changes slowly, so a coarse estimate is as good and costs microseconds.
BACKGROUND_SIDE = 32
# The closing's size as a fraction of the longer side: wider than any pen stroke (a drawing
# pad's brush is 1/12 of the pad), so strokes vanish from the estimate and paper remains.
CLOSING_FRACTION = 1 / 3
# Small images (scans, thumbnails: at most SMALL_SIDE a side) have strokes up to half their
# width (a bold 1 in a 30x48 scan): a wider closing keeps them out of the background.
SMALL_SIDE = 64
SMALL_CLOSING_FRACTION = 1 / 2
_EPSILON = np.float32(1 / 255)


def _small(image: np.ndarray) -> np.ndarray:
    """A copy at most about BACKGROUND_SIDE pixels per side (every n-th pixel)."""
    step = max(1, -(-max(image.shape[:2]) // BACKGROUND_SIDE))
    return image[::step, ::step]


def light_paper(rgb: np.ndarray) -> np.ndarray:
    """Invert light-on-dark images (MNIST's own convention, chalk on a board), so that paper
    is light and ink dark from here on.

    A light border is paper (scans, drawings, most photos). A dark border is either a dim
    photo or light ink on a dark ground: then the side on which pixels stray furthest from
    their neighbourhood's median is the ink's side.
    """
    edges = (rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1])
    border = np.concatenate(edges)
    if float(np.median(border.mean(axis=-1) if rgb.ndim == 3 else border)) > 0.5:
        return rgb
    small = _small(rgb)
    small = small.mean(axis=2) if small.ndim == 3 else small
    size = max(3, round(max(small.shape) / 3) | 1)
    deviation = small - ndimage.median_filter(small, size)
    darkest, brightest = np.percentile(deviation, (1, 99))
    return 1.0 - rgb if brightest > -darkest else rgb


def grey(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's brightness relative to the paper's colour, in the channel where ink
    differs most from paper: min over channels of pixel / paper.

    Blue or red ink is dark in at least one channel (red ink in green and blue), pencil is
    darker than grey paper in all three, and a tint of the light (warm lamps) divides out.
    """
    if rgb.ndim == 2:
        return rgb
    sample = _small(rgb).reshape(-1, 3)
    nth = int(0.9 * (len(sample) - 1))  # the 90th percentile: bright paper, not glare
    paper = np.maximum(np.partition(sample, nth, axis=0)[nth], _EPSILON)
    scale = np.float32(1) / paper
    # Channel planes one at a time: a reduction over the interleaved last axis is ~5x slower.
    out = rgb[..., 0] * scale[0]
    np.minimum(out, rgb[..., 1] * scale[1], out=out)
    return np.minimum(out, rgb[..., 2] * scale[2], out=out)


def _block_max(image: np.ndarray, factor: int) -> np.ndarray:
    """Downsample by taking each factor x factor block's brightest pixel (paper wins); a
    partial block at the bottom or right edge is dropped."""
    factor = min(factor, *image.shape)
    if factor <= 1:
        return image
    height = image.shape[0] // factor * factor
    width = image.shape[1] // factor * factor
    # Strided row slices first (contiguous, fast), then the columns of the smaller result.
    rows = np.maximum.reduce([image[i:height:factor] for i in range(factor)])
    return rows[:, :width].reshape(rows.shape[0], width // factor, factor).max(axis=2)


def _odd_reflect(image: np.ndarray, margin: int) -> np.ndarray:
    """``np.pad(image, margin, mode="reflect", reflect_type="odd")``, at half its cost."""
    top = 2 * image[:1] - image[margin:0:-1]
    bottom = 2 * image[-1:] - image[-2 : -margin - 2 : -1]
    image = np.concatenate([top, image, bottom])
    left = 2 * image[:, :1] - image[:, margin:0:-1]
    right = 2 * image[:, -1:] - image[:, -2 : -margin - 2 : -1]
    return np.concatenate([left, image, right], axis=1)


def background(grey_image: np.ndarray) -> np.ndarray:
    """The paper's brightness at every pixel: a morphological closing (strokes removed) of a
    reduced copy, smoothed and enlarged back."""
    height, width = grey_image.shape
    factor = -(-max(height, width) // BACKGROUND_SIDE)
    small = _block_max(grey_image, factor)
    fraction = SMALL_CLOSING_FRACTION if max(height, width) <= SMALL_SIDE else CLOSING_FRACTION
    size = max(3, round(max(small.shape) * fraction) | 1)
    # Near the border a closing sees light from one side only and overestimates a dim edge;
    # continuing the image linearly past its border (odd reflection) keeps a gradient exact.
    margin = min(size, *small.shape) - 1
    padded = _odd_reflect(small, margin) if margin > 0 else small
    closed = ndimage.minimum_filter(ndimage.maximum_filter(padded, size), size)
    smooth = ndimage.uniform_filter(closed, size // 2 | 1)
    if margin > 0:
        smooth = smooth[margin:-margin, margin:-margin]
    if smooth.shape == grey_image.shape:
        return smooth
    return np.asarray(Image.fromarray(smooth).resize((width, height), Image.BILINEAR))


def flatten(grey_image: np.ndarray) -> np.ndarray:
    """Ink darkness in [0,1] (0 = paper): 1 - grey / background, so paper in a shadow and
    paper in full light both come out as 0."""
    flat = grey_image / np.maximum(background(grey_image), _EPSILON)
    return np.clip(np.float32(1) - flat, 0.0, 1.0, out=flat)
