"""training.handwriting: the shipped mfeat copy is verified, the set is deterministic."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from training import handwriting as hw
from training.mnist import MnistChecksumError


def test_shipped_mfeat_is_verified_and_balanced(tmp_path):
    pixels, labels = hw.load_mfeat()
    assert pixels.shape == (2000, 16, 15) and pixels.max() == hw.MFEAT_LEVELS
    assert np.bincount(labels).tolist() == [200] * 10
    tampered = pixels.copy()
    tampered[0, 0, 0] ^= 1
    path = hw.write_mfeat(tmp_path / "m.npz", tampered, labels)
    with pytest.raises(MnistChecksumError):
        hw.load_mfeat(path)


def test_wheel_is_checked_before_reading(tmp_path):
    fake = tmp_path / hw.MFEAT_WHEEL
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(hw.MFEAT_MEMBER, "0,1\n")
    with pytest.raises(MnistChecksumError, match="sha256"):
        hw.mfeat_from_wheel(fake)


def test_csv_parser_reads_rows_and_labels():
    header = ",".join(str(i) for i in range(241))
    rows = [",".join(["6"] * 240 + [str(i // 200)]) for i in range(2000)]
    pixels, labels = hw._parse_mfeat_csv("\n".join([header, *rows]))
    assert pixels.shape == (2000, 16, 15) and int(pixels.max()) == 6
    assert labels[0] == 0 and labels[-1] == 9


def test_eval_set_is_deterministic_pngs():
    first = hw.build_eval_set(strokes_per_digit=2, mfeat_stride=50)
    again = hw.build_eval_set(strokes_per_digit=2, mfeat_stride=50)
    assert first.images == again.images
    counts = {p: int(np.sum(first.parts == p)) for p in hw.PARTS}
    assert counts == {
        "mfeat": 40, "mfeat-photo": 20, "mfeat-8x8": 20, "strokes": 20, "strokes-photo": 20,
    }  # fmt: skip
    other = hw.build_eval_set(seed=1, parts=["strokes"], strokes_per_digit=2)
    assert other.images != first.select(["strokes"]).images
    assert first.labels[first.parts == "mfeat"].tolist() == [d for d in range(10) for _ in "ab" * 2]
    for index in (0, 40, 60, 80, 100):
        image = Image.open(io.BytesIO(first.images[index]))
        assert image.format == "PNG"
    tiny = Image.open(io.BytesIO(first.select(["mfeat-8x8"]).images[0]))
    assert tiny.size == (8, 8) and len(np.unique(np.asarray(tiny))) > 3
    assert first.labels[first.parts == "strokes"].tolist() == list(range(10)) * 2
