"""digits-client's --version (the program) and --model-version (a model's), and the plot
extra named when matplotlib is missing."""

import importlib.util

import pytest
from PIL import Image

import serving
from clients.cli.main import main
from tests.helpers.requests import random_images


def test_version_is_the_programs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"digits-client {serving.__version__}"


def test_model_version_picks_a_version(server, tmp_path, capsys):
    image = tmp_path / "digit.png"
    Image.fromarray((random_images(1)[0] * 255).astype("uint8")).save(image)
    address = ["--server", server.address]
    assert main(["classify", str(image), "--model", "cnn", "--model-version", "1", *address]) == 0
    assert "model cnn v1" in capsys.readouterr().out
    assert main(["classify", str(image), "--model", "cnn", "--model-version", "7", *address]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "what"),
    [(["grid"], "digits-client grid"), (["load", "--plot", "x.png"], "digits-client load --plot")],
)
def test_missing_matplotlib_names_the_plot_extra(argv, what, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    # Checked before any connection: no server at this address.
    assert main([*argv, "--server", "127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"digits-client: {what} draws with matplotlib, which is not installed; "
        "install the plot extra: pip install 'digits-server[plot]'"
    )
