"""KServe V2 datatypes <-> numpy, and wire bytes <-> ndarray without Python lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from serving.errors import InvalidInput

# Little-endian explicitly: the V2 protocol fixes the byte order on the wire.
V2_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
NUMPY_TO_V2: dict[np.dtype, str] = {v: k for k, v in V2_TO_NUMPY.items()}

# Which InferTensorContents field carries each datatype when not sent raw.
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP16": "fp32_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


MAX_DIM = 2**31 - 1
# Bytes numpy can address: the product of a shape's dimensions times 8 must stay below it.
MAX_EXTENT = (2**63 - 1) // 8


def numpy_dtype(datatype: str, what: str) -> np.dtype:
    """The numpy dtype for a V2 datatype name, or InvalidInput naming ``what``."""
    try:
        return V2_TO_NUMPY[datatype]
    except KeyError:
        raise InvalidInput(
            f"{what}: unsupported datatype {datatype!r}; expected one of {sorted(V2_TO_NUMPY)}"
        ) from None


def element_count(shape: Sequence[int], what: str) -> int:
    """Number of elements of a concrete shape; negative dims are refused."""
    count = 1
    # numpy refuses a shape whose non-zero dimensions multiply past its index range even when
    # another dimension is 0 (the array would be empty): track that product separately.
    extent = 1
    for dim in shape:
        if dim < 0:
            raise InvalidInput(f"{what}: shape {list(shape)} has a negative dimension")
        # numpy cannot even describe larger arrays (a zero elsewhere would hide it).
        if dim > MAX_DIM:
            raise InvalidInput(f"{what}: shape {list(shape)} has a dimension above {MAX_DIM}")
        count *= dim
        extent *= max(dim, 1)
    if extent > MAX_EXTENT:
        raise InvalidInput(f"{what}: shape {list(shape)} is too large to describe")
    return count


def from_raw(data: bytes, datatype: str, shape: Sequence[int], what: str) -> np.ndarray:
    """Decode little-endian row-major bytes into an ndarray of ``shape`` (zero copy)."""
    dtype = numpy_dtype(datatype, what)
    count = element_count(shape, what)
    expected = count * dtype.itemsize
    if len(data) != expected:
        raise InvalidInput(
            f"{what}: {datatype}{list(shape)} needs {expected} bytes "
            f"({count} x {dtype.itemsize}), got {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def from_contents(values: Sequence, datatype: str, shape: Sequence[int], what: str) -> np.ndarray:
    """Decode typed repeated contents (already parsed by protobuf) into an ndarray."""
    dtype = numpy_dtype(datatype, what)
    count = element_count(shape, what)
    if len(values) != count:
        raise InvalidInput(
            f"{what}: {datatype}{list(shape)} needs {count} values in "
            f"contents.{CONTENTS_FIELD[datatype]}, got {len(values)}"
        )
    # np.array over a protobuf repeated field goes through the buffer/sequence
    # protocol in C; a value the datatype cannot hold raises instead of wrapping.
    try:
        return np.asarray(values, dtype=dtype).reshape(shape)
    except (OverflowError, ValueError) as exc:
        raise InvalidInput(f"{what}: values outside the range of {datatype} ({exc})") from None


def to_raw(array: np.ndarray) -> tuple[str, bytes]:
    """V2 datatype and little-endian bytes of an array."""
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    try:
        datatype = NUMPY_TO_V2[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"no V2 datatype for numpy dtype {array.dtype}") from None
    return datatype, np.ascontiguousarray(array, dtype=dtype).tobytes()


def from_json_data(values: object, datatype: str, shape: Sequence[int], what: str) -> np.ndarray:
    """Decode a V2 JSON tensor's ``data`` (flat or nested, row-major) into an ndarray."""
    dtype = numpy_dtype(datatype, what)
    count = element_count(shape, what)
    if not isinstance(values, list):
        raise InvalidInput(f"{what}: 'data' must be a JSON array")
    try:
        # Parse wide first: a direct uint8 cast would wrap 300 to 44 without a word.
        wide = np.asarray(values, dtype=np.float64 if dtype.kind in "fiu" else dtype)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{what}: 'data' is not a regular array of numbers ({exc})") from None
    if wide.size != count:
        raise InvalidInput(
            f"{what}: {datatype}{list(shape)} needs {count} values in 'data', got {wide.size}"
        )
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if wide.size and (
            not np.all(np.isfinite(wide)) or wide.min() < info.min or wide.max() > info.max
        ):
            raise InvalidInput(f"{what}: values outside the range of {datatype}")
        if not np.array_equal(wide, np.round(wide)):
            raise InvalidInput(f"{what}: {datatype} values must be whole numbers")
    return wide.astype(dtype, copy=False).reshape(shape)


# From this many float32 values a BLAS dot product (~3 us for a 64-image batch) checks them
# faster than a float64 sum (~20 us); below it numpy's set-up dominates and the sum is cheaper.
DOT_MIN_ELEMENTS = 4096


def all_finite(array: np.ndarray) -> bool:
    """Whether a float array holds no NaN or Inf; exact.

    One reduction first (NaN and Inf survive it); only when it is not finite does the
    element-wise check decide, since a float32 dot product can also overflow on large finite
    values (a float64 sum of float32 values cannot).
    """
    if array.dtype != np.float32:  # rare: float64/float16 inputs, whose float64 sum may overflow
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(array.sum(dtype=np.float64)):
                return True
    elif array.size >= DOT_MIN_ELEMENTS:
        flat = array.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(np.dot(flat, flat)):
                return True
    elif math.isfinite(array.sum(dtype=np.float64)):  # float32 values cannot overflow it
        return True
    return bool(np.isfinite(array).all())
