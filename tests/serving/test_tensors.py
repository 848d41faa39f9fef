import numpy as np
import pytest

from serving.errors import InvalidInput
from serving.tensors import (
    CONTENTS_FIELD,
    DOT_MIN_ELEMENTS,
    MAX_DIM,
    V2_TO_NUMPY,
    all_finite,
    element_count,
    from_contents,
    from_raw,
    to_raw,
)


@pytest.mark.parametrize("datatype", sorted(V2_TO_NUMPY))
def test_raw_round_trip_for_every_datatype(datatype):
    array = np.arange(6).astype(V2_TO_NUMPY[datatype]).reshape(2, 3)
    name, data = to_raw(array)
    assert name == datatype
    decoded = from_raw(data, datatype, [2, 3], "x")
    np.testing.assert_array_equal(decoded, array)
    assert decoded.base is not None  # a view on the bytes, not a copy


def test_every_datatype_has_a_contents_field():
    assert set(CONTENTS_FIELD) == set(V2_TO_NUMPY)


def test_big_endian_arrays_are_sent_little_endian():
    array = np.array([1.5, -2.0], dtype=">f4")
    name, data = to_raw(array)
    assert name == "FP32" and data == np.array([1.5, -2.0], dtype="<f4").tobytes()


def test_byte_count_mismatch_names_shape_and_sizes():
    with pytest.raises(
        InvalidInput, match=r"input 'x': FP32\[2, 3\] needs 24 bytes \(6 x 4\), got 20"
    ):
        from_raw(bytes(20), "FP32", [2, 3], "input 'x'")


def test_contents_count_mismatch_names_the_field():
    with pytest.raises(InvalidInput, match=r"needs 4 values in contents\.fp32_contents, got 3"):
        from_contents([1.0, 2.0, 3.0], "FP32", [2, 2], "x")


def test_dimensions_are_bounded():
    assert element_count([0, MAX_DIM], "x") == 0
    with pytest.raises(InvalidInput, match="negative"):
        element_count([-1, 28], "x")
    with pytest.raises(InvalidInput, match="above"):
        element_count([0, MAX_DIM + 1], "x")


def test_an_empty_shape_numpy_cannot_describe_is_invalid_input():
    # Found by fuzzing: a zero hides the product from the count, but numpy still refuses it.
    for shape in ([0, 3, 10**6, 10**6, 10**6], [10**6, 10**6, 36, 10**6, 0]):
        with pytest.raises(InvalidInput, match="too large"):
            from_raw(b"", "FP32", shape, "x")
    assert from_raw(b"", "FP32", [0, 28, 28], "x").shape == (0, 28, 28)


def test_unknown_datatype_lists_the_known_ones():
    with pytest.raises(InvalidInput, match=r"unsupported datatype 'BYTES'.*FP32"):
        from_raw(b"", "BYTES", [0], "x")


def test_contents_outside_the_datatype_range_are_invalid_input():
    with pytest.raises(InvalidInput, match="outside the range of INT8"):
        from_contents([1000], "INT8", [1], "x")


@pytest.mark.parametrize("images", [1, 64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_all_finite_finds_one_bad_value_in_small_and_large_batches(images: int, bad: float) -> None:
    # 64 images take the dot-product path (>= DOT_MIN_ELEMENTS values), one image the sum.
    array = np.random.default_rng(0).random((images, 28, 28), dtype=np.float32)
    assert (array.size >= DOT_MIN_ELEMENTS) == (images == 64)
    assert all_finite(array)
    array[images - 1, 27, 27] = bad
    assert not all_finite(array)


@pytest.mark.parametrize("images", [1, 64])
def test_all_finite_accepts_large_finite_values_whose_reduction_overflows(images: int) -> None:
    array = np.full((images, 28, 28), 3e38, dtype=np.float32)  # overflows a float32 dot
    assert all_finite(array)
    assert all_finite(np.full((images, 28, 28), 1e307))  # overflows a float64 sum
    array[0, 0, 0] = np.nan
    assert not all_finite(array)
