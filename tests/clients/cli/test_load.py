"""``digits-client load`` end to end (gRPC and HTTP APIs)."""

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


def test_cli_http_apis_by_url_or_by_server_address(server, capsys):
    argv = ["load", "--model", "cnn", "-c", "2", "-b", "2", "-d", "0.3", "--warmup", "0"]
    assert main([*argv, "--api", "rest-binary", "--http", server.http_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["api"] == "rest-binary" and report["errors"] == {} and report["requests"] > 0
    # Without --http, --server is the HTTP address; --wait polls /v2/health/ready.
    address = server.http_url.removeprefix("http://")
    assert main([*argv, "--api", "http-png", "--server", address, "--wait", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["api"] == "http-png" and report["errors"] == {} and report["requests"] > 0
