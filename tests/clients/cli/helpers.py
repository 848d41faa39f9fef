"""What the command-line tests share: a PNG to classify and the one-error-line check."""

import numpy as np
from PIL import Image

from clients.load import synthetic_digits


def one_error_line(capsys) -> str:
    """The single stderr line of a failed command (no traceback)."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert lines[0].startswith("digits-client: ")
    return lines[0]


def write_png(tmp_path, dark_on_light: bool = True):
    """A synthetic digit as a 112x112 PNG."""
    digit = synthetic_digits(1, seed=4)[0]
    pixels = 255 - digit if dark_on_light else digit
    path = tmp_path / "digit.png"
    Image.fromarray(np.kron(pixels, np.ones((4, 4), dtype=np.uint8))).save(path)
    return path
