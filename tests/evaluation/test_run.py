"""``digits-eval run`` against a real server on loopback port 0, shipped models.

The report's numbers are checked against answers this test asks the server for itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from evaluation.cli import main
from evaluation.dataset import write_set
from evaluation.scoring import digits_only
from serving.settings import default_repository
from tests.helpers.server_thread import ServerThread, loopback_settings

CONDITIONS = ("scan", "uneven_light", "specks", "exif")


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory, digits) -> Path:
    directory = tmp_path_factory.mktemp("photo-set")
    write_set(directory, digits, count=4, sheets_per_length=1, conditions=CONDITIONS)
    return directory


@pytest.fixture(scope="module")
def live_server():
    server = ServerThread(loopback_settings(default_repository())).start()
    yield server
    server.stop()


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "image/jpeg"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_report_is_computed_from_the_servers_answers(photo_set, live_server, tmp_path, capsys):
    out = tmp_path / "results"
    url = live_server.http_url
    args = ["run", "--set", str(photo_set), "--url", url, "--out", str(out)]
    assert main([*args, "--model", "robust", "--model", "cnn"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    labels = json.loads((photo_set / "labels.json").read_text())
    assert set(results["models"]) == {"robust", "cnn"}
    for model, result in results["models"].items():
        assert f"model {model} (version {result['version']})" in printed
        assert (out / f"results-{model}.png").is_file()
        right: dict[str, int] = {}
        for item, record in zip(labels["singles"], result["answers"]["singles"], strict=True):
            status, body = post(
                f"{url}/v1/classify?model={model}", (photo_set / item["file"]).read_bytes()
            )
            assert status == 200
            said = body["predictions"][0]["label"]
            assert record["answer"] == said, item["file"]
            right[item["condition"]] = right.get(item["condition"], 0) + (
                said == str(item["label"])
            )
        for condition in CONDITIONS:
            scores = result["singles"][condition]
            assert scores["images"] == 4
            assert scores["right"] == right[condition]
            assert scores["accuracy"] == right[condition] / 4
        scan = {
            r["index"]: r["answer"]
            for r in result["answers"]["singles"]
            if r["condition"] == "scan"
        }
        exif = [r for r in result["answers"]["singles"] if r["condition"] == "exif"]
        same = sum(r["answer"] == scan[r["index"]] for r in exif)
        assert result["exif_same_answer_as_scan"] == {"pairs": 4, "same": same, "rate": same / 4}

        first = labels["sheets"][0]
        status, _ = post(f"{url}/v1/read?model={model}", (photo_set / first["file"]).read_bytes())
        if status == 404:
            assert result["numbers"] is None
            assert "404" in result["numbers_message"]
            assert "404" in printed
            continue
        exact: dict[str, int] = {}
        for item in labels["sheets"]:
            status, body = post(
                f"{url}/v1/read?model={model}", (photo_set / item["file"]).read_bytes()
            )
            group = f"{item['layout']}/{item['condition']}"
            hit = status == 200 and digits_only(body["text"]) == item["text"]
            exact[group] = exact.get(group, 0) + hit
        for group, count in exact.items():
            assert result["numbers"][group]["all"]["sheets"] == 5
            assert result["numbers"][group]["all"]["exact"] == count


def test_run_starts_its_own_server_when_no_url_is_given(photo_set, tmp_path, capsys):
    out = tmp_path / "own"
    code = main(["run", "--set", str(photo_set), "--out", str(out), "--limit", "1"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert "started by digits-eval" in results["url"]
    ((model, result),) = results["models"].items()
    assert model == "robust"  # the server's default model
    assert [s["images"] for s in result["singles"].values()] == [1] * len(CONDITIONS)
    assert "model robust" in capsys.readouterr().out


def test_unknown_model_and_missing_set_are_clear_errors(photo_set, live_server, tmp_path, capsys):
    args = ["run", "--set", str(photo_set), "--url", live_server.http_url, "--out", str(tmp_path)]
    assert main([*args, "--model", "nope"]) == 2
    assert "serves no ready model nope" in capsys.readouterr().err
    assert main(["run", "--set", str(tmp_path / "missing"), "--url", live_server.http_url]) == 2
    assert "digits-eval photos --out" in capsys.readouterr().err
