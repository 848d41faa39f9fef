import numpy as np
import pytest

from serving.batching.merge import merge, split


def test_merge_then_split_returns_each_parts_rows():
    parts = [np.full((n, 2), i, dtype=np.float32) for i, n in enumerate([1, 3, 2])]
    batch, ends = merge(parts)
    assert batch.shape == (6, 2)
    assert ends == [1, 4, 6]
    pieces = split(batch * 10, ends)
    for i, (part, piece) in enumerate(zip(parts, pieces, strict=True)):
        assert piece.shape == part.shape
        assert (piece == i * 10).all()


def test_single_part_is_not_copied():
    part = np.zeros((4, 3))
    batch, ends = merge([part])
    assert batch is part and ends == [4]


def test_split_refuses_wrong_row_count():
    with pytest.raises(ValueError, match="returned 5 rows for a batch of 6"):
        split(np.zeros((5, 2)), [2, 6])
