"""training.mnist: verified sources, IDX parsing, loader order, and refusal of tampered files."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training import mnist as mn
from training.mnist import (
    CACHE_CONTENT_SHA256,
    Mnist,
    MnistChecksumError,
    MnistError,
    MnistFormatError,
    content_sha256,
    load_idx_dir,
    load_mnist,
    load_npz,
    load_wheel,
    mnist_subset,
    read_idx,
    to_float,
    write_cache,
    write_idx,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tiny(seed: int = 0, n_train: int = 12, n_test: int = 5) -> Mnist:
    rng = np.random.default_rng(seed)
    return Mnist(
        x_train=rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, size=n_train).astype(np.uint8),
        x_test=rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, size=n_test).astype(np.uint8),
    )


def _write_idx_dir(directory: Path, m: Mnist, gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for key, base in mn.IDX_FILES.items():
        write_idx(directory / f"{base}{suffix}", getattr(m, key))
    return directory


def _same(a: Mnist, b: Mnist) -> None:
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


def _pickle_bytes(m: Mnist, n_valid: int = 4) -> bytes:
    """The classic (train, valid, test) layout, pixels as value/256 in float32."""

    def flat(x: np.ndarray) -> np.ndarray:
        return (x.reshape(len(x), 784).astype(np.float32) / 256).astype(np.float32)

    n = len(m.x_train) - n_valid
    data = (
        (flat(m.x_train[:n]), m.y_train[:n].astype(np.int64)),
        (flat(m.x_train[n:]), m.y_train[n:].astype(np.int64)),
        (flat(m.x_test), m.y_test.astype(np.int64)),
    )
    # Protocol 3 stores bytes natively (protocol 2 from Python 3 would need _codecs.encode).
    return gzip.compress(pickle.dumps(data, protocol=3), mtime=0)


def _fake_wheel(path: Path, member_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(mn.WHEEL_MEMBER, member_bytes)
    return path


@pytest.fixture
def no_unpickle(monkeypatch):
    """Fail the test if anything reaches the unpickler."""

    def forbidden(raw: bytes) -> None:
        raise AssertionError("unpickler reached for an unverified file")

    monkeypatch.setattr(mn, "_unpickle_mnist", forbidden)


# --------------------------------------------------------------------------- real data


def test_real_mnist_is_the_real_thing(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28) and mnist.x_test.dtype == np.uint8
    assert mnist.y_train.shape == (60000,) and mnist.y_test.shape == (10000,)
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y_train).tolist()[:3] == [5923, 6742, 5958]
    assert content_sha256(mnist) == CACHE_CONTENT_SHA256


def test_subset_and_float(mnist):
    sub = mnist_subset(mnist, 100, 30)
    assert len(sub.x_train) == 100 and len(sub.y_test) == 30
    x = to_float(sub.x_train)
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() == pytest.approx(1.0)


# --------------------------------------------------------------------------- IDX


def test_idx_round_trip_gz_and_plain(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.gz", "a"):
        write_idx(tmp_path / name, array)
        back = read_idx(tmp_path / name)
        np.testing.assert_array_equal(back, array)
        assert back.dtype == np.uint8
    raw = (tmp_path / "a").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3])
    assert raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"


def test_idx_big_endian_wider_types(tmp_path):
    array = np.array([1, 256, -2], dtype=np.int32)
    write_idx(tmp_path / "w", array)
    assert (tmp_path / "w").read_bytes()[4:] == b"\x00\x00\x00\x03" + bytes.fromhex(
        "0000000100000100fffffffe"
    )
    np.testing.assert_array_equal(read_idx(tmp_path / "w"), array)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "bad IDX magic"),
        (b"\x00\x00\x42\x01\x00\x00\x00\x01\x07", "unknown IDX data type"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "need 5 data bytes"),
        (b"\x00\x00", "too short"),
    ],
)
def test_idx_errors_are_clear(tmp_path, payload, message):
    (tmp_path / "bad").write_bytes(payload)
    with pytest.raises(MnistFormatError, match=message) as info:
        read_idx(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(info.value)


def test_idx_dir_and_npz_give_identical_arrays(tmp_path, mnist):
    sub = mnist_subset(mnist, 300, 100)
    idx_gz = load_idx_dir(_write_idx_dir(tmp_path / "gz", sub, gz=True))
    idx_plain = load_idx_dir(_write_idx_dir(tmp_path / "plain", sub, gz=False))
    npz = load_npz(write_cache(sub, tmp_path / "sub.npz"))
    _same(idx_gz, sub)
    _same(idx_plain, sub)
    _same(npz, sub)
    assert content_sha256(idx_gz) == content_sha256(npz)


def test_idx_dir_missing_file(tmp_path):
    _write_idx_dir(tmp_path, _tiny())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte"):
        load_idx_dir(tmp_path)


def test_idx_dir_rejects_wrong_shapes(tmp_path):
    m = _tiny()
    _write_idx_dir(tmp_path, m)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(MnistFormatError, match="y_test"):
        load_idx_dir(tmp_path)


# --------------------------------------------------------------------------- npz / caches


def test_npz_missing_keys(tmp_path):
    np.savez(tmp_path / "x.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(MnistFormatError, match="lacks keys"):
        load_npz(tmp_path / "x.npz")


def test_npz_with_object_arrays_is_not_unpickled(tmp_path):
    m = _tiny()
    np.savez(
        tmp_path / "obj.npz",
        x_train=m.x_train,
        y_train=np.array([object()] * len(m.y_train), dtype=object),
        x_test=m.x_test,
        y_test=m.y_test,
    )
    with pytest.raises(MnistFormatError):
        load_npz(tmp_path / "obj.npz")


def test_keras_cache_with_wrong_sha_is_refused(tmp_path):
    keras_npz = write_cache(_tiny(), tmp_path / "keras" / "mnist.npz")
    with pytest.raises(MnistChecksumError) as info:
        load_mnist(keras_cache=keras_npz, cache=tmp_path / "none.npz", download=False)
    message = str(info.value)
    assert str(keras_npz) in message
    assert mn.KERAS_NPZ_SHA256 in message
    assert mn.sha256_file(keras_npz) in message


def test_keras_cache_accepted_when_sha_matches(tmp_path, monkeypatch):
    keras_npz = write_cache(_tiny(1), tmp_path / "mnist.npz")
    monkeypatch.setattr(mn, "KERAS_NPZ_SHA256", mn.sha256_file(keras_npz))
    m = load_mnist(keras_cache=keras_npz, cache=tmp_path / "none.npz", download=False)
    assert m.source.startswith("keras:")
    _same(m, _tiny(1))


def test_verified_cache_accepted_by_content_not_bytes(tmp_path, mnist):
    # Two writes of the same arrays: file bytes may differ, contents may not.
    cache = write_cache(mnist, tmp_path / "mnist.npz")
    m = load_mnist(keras_cache=tmp_path / "no-keras.npz", cache=cache, download=False)
    assert m.source.startswith("cache:")
    assert content_sha256(m) == CACHE_CONTENT_SHA256


def test_tampered_verified_cache_is_refused(tmp_path, mnist):
    x_test = mnist.x_test.copy()
    x_test[0, 14, 14] ^= 1  # one pixel, one bit
    tampered = Mnist(mnist.x_train, mnist.y_train, x_test, mnist.y_test)
    cache = write_cache(tampered, tmp_path / "mnist.npz")
    with pytest.raises(MnistChecksumError, match="array contents") as info:
        load_mnist(keras_cache=tmp_path / "no-keras.npz", cache=cache, download=False)
    assert CACHE_CONTENT_SHA256 in str(info.value)


def test_write_cache_is_atomic_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "c" / "mnist.npz"
    write_cache(_tiny(), target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mn.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        write_cache(_tiny(2), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["mnist.npz"]


def test_default_cache_path_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path))
    assert mn.default_cache_path() == tmp_path / "mnist.npz"
    monkeypatch.delenv("DIGITS_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mn.default_cache_path() == tmp_path / ".cache" / "digits-server" / "mnist.npz"
    assert mn.keras_cache_path() == tmp_path / ".keras" / "datasets" / "mnist.npz"


# --------------------------------------------------------------------------- order


def test_explicit_path_beats_caches(tmp_path, monkeypatch):
    # Both caches are tampered: consulting either would raise, so success proves they were skipped.
    bad_keras = write_cache(_tiny(7), tmp_path / "keras.npz")
    bad_cache = write_cache(_tiny(8), tmp_path / "cache.npz")
    monkeypatch.setattr(mn, "_download_wheel", lambda dest: pytest.fail("download attempted"))
    explicit_npz = write_cache(_tiny(3), tmp_path / "explicit.npz")
    explicit_dir = _write_idx_dir(tmp_path / "idx", _tiny(4))
    m = load_mnist(explicit_npz, keras_cache=bad_keras, cache=bad_cache)
    _same(m, _tiny(3))
    m = load_mnist(explicit_dir, keras_cache=bad_keras, cache=bad_cache)
    _same(m, _tiny(4))


def test_explicit_path_that_does_not_exist(tmp_path):
    with pytest.raises(MnistError, match="neither"):
        load_mnist(tmp_path / "nope.npz")


def test_keras_cache_is_consulted_before_ours(tmp_path, mnist):
    good_ours = write_cache(mnist_subset(mnist), tmp_path / "ours.npz")
    bad_keras = write_cache(_tiny(), tmp_path / "keras.npz")
    with pytest.raises(MnistChecksumError, match=r"keras\.npz"):
        load_mnist(keras_cache=bad_keras, cache=good_ours, download=False)


def test_nothing_available_without_download(tmp_path):
    with pytest.raises(MnistError, match="download=False"):
        load_mnist(keras_cache=tmp_path / "a.npz", cache=tmp_path / "b.npz", download=False)


def test_home_and_env_locate_caches(tmp_path, monkeypatch, mnist):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    write_cache(mnist, tmp_path / "data" / "mnist.npz")
    assert load_mnist(download=False).source == f"cache:{tmp_path / 'data' / 'mnist.npz'}"


# --------------------------------------------------------------------------- PyPI wheel


def test_wheel_conversion_matches_original_pixels(tmp_path):
    m = _tiny(5)
    packed = _pickle_bytes(m)
    wheel = _fake_wheel(tmp_path / "w.whl", packed)
    got = load_wheel(wheel, wheel_sha256=mn.sha256_file(wheel), pickle_sha256=_sha(packed))
    _same(got, m)
    assert got.y_train.dtype == np.uint8


def test_tampered_wheel_refused_before_opening(tmp_path, monkeypatch, no_unpickle):
    wheel = _fake_wheel(tmp_path / "w.whl", _pickle_bytes(_tiny()))
    monkeypatch.setattr(mn.zipfile, "ZipFile", lambda *a, **k: pytest.fail("zip opened"))
    with pytest.raises(MnistChecksumError) as info:
        load_wheel(wheel)  # the real expected sha256
    assert info.value.expected == mn.WHEEL_SHA256
    assert info.value.actual == mn.sha256_file(wheel)
    assert str(wheel) in str(info.value)


def test_tampered_pickle_refused_before_unpickling(tmp_path, no_unpickle):
    packed = _pickle_bytes(_tiny())
    original_sha = _sha(packed)
    tampered = _pickle_bytes(_tiny(9))
    wheel = _fake_wheel(tmp_path / "w.whl", tampered)
    with pytest.raises(MnistChecksumError, match=r"mnist\.pkl\.gz") as info:
        load_wheel(wheel, wheel_sha256=mn.sha256_file(wheel), pickle_sha256=original_sha)
    assert info.value.expected == original_sha
    assert info.value.actual == _sha(tampered)


class _Exploit:
    def __reduce__(self):
        return (subprocess.call, (["false"],))


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    # Even with matching checksums, a pickle naming anything but numpy's reconstructors fails.
    packed = gzip.compress(pickle.dumps(_Exploit(), protocol=2))
    wheel = _fake_wheel(tmp_path / "w.whl", packed)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_wheel(wheel, wheel_sha256=mn.sha256_file(wheel), pickle_sha256=_sha(packed))


def test_restricted_unpickler_accepts_numpy_arrays():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(mn._unpickle_mnist(pickle.dumps(array, protocol=3)), array)
    with pytest.raises(pickle.UnpicklingError):
        mn._unpickle_mnist(pickle.dumps(io.BytesIO(b"x")))


def test_download_of_tampered_wheel_writes_no_cache(tmp_path, monkeypatch, no_unpickle):
    (tmp_path / "dl").mkdir()
    fake = _fake_wheel(tmp_path / "dl" / mn.WHEEL_FILENAME, b"not the real pickle")
    monkeypatch.setattr(mn, "_download_wheel", lambda dest: fake)
    cache = tmp_path / "cache" / "mnist.npz"
    with pytest.raises(MnistChecksumError, match=mn.WHEEL_SHA256):
        load_mnist(keras_cache=tmp_path / "none.npz", cache=cache)
    assert not cache.exists()


def test_mnist_dataclass_validates():
    with pytest.raises(MnistFormatError, match="x_train"):
        Mnist(
            np.zeros((2, 28, 27), np.uint8),
            np.zeros(2, np.uint8),
            np.zeros((1, 28, 28), np.uint8),
            np.zeros(1, np.uint8),
        )
    with pytest.raises(MnistFormatError, match="outside"):
        Mnist(
            np.zeros((2, 28, 28), np.uint8),
            np.array([1, 10], np.uint8),
            np.zeros((1, 28, 28), np.uint8),
            np.zeros(1, np.uint8),
        )


def test_importing_training_does_not_import_tensorflow():
    code = (
        "import sys, training, training.mnist, training.models, training.export, "
        "training.publish, training.plots, training.pipeline, training.__main__; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
