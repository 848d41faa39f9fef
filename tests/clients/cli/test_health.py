"""``digits-client health`` and ``digits-client models`` against a live server."""

import json

from clients.__main__ import main


def test_health_and_models(server, capsys):
    assert main(["health", "--server", server.address, "--wait", "5"]) == 0
    assert capsys.readouterr().out.strip().endswith("server: SERVING")
    assert main(["health", "--server", server.address, "--model", "one_vs_rest"]) == 0
    assert main(["health", "--server", server.address, "--model", "nope"]) == 1
    capsys.readouterr()
    assert main(["models", "--server", server.address, "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert set(models) == {"cnn", "one_vs_rest"}
    assert models["one_vs_rest"]["labels"] == ["not 1", "1"]
