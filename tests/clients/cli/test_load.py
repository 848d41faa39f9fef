"""``digits-client load`` end to end."""

import json

from clients.__main__ import main


def test_cli_json_and_plot(server, tmp_path, capsys):
    plot = tmp_path / "load.png"
    argv = ["load", "--server", server.address, "--model", "cnn", "--api", "v2"]
    argv += ["-c", "2", "-b", "8", "-d", "0.5", "--warmup", "0.1", "--json", "--plot", str(plot)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == {} and report["batch"] == 8 and report["images_per_s"] > 0
    assert set(report["latency_ms"]) >= {"p50", "p90", "p99", "max"}
    assert plot.stat().st_size > 10_000
