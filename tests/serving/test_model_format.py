"""serving.model_format: one definition of model.json, in step with its JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from serving.errors import ModelLoadError
from serving.model_format import (
    SCHEMA_PATH,
    InstanceGroup,
    ModelManifest,
    digit_manifest,
    sha256_bytes,
    sha256_file,
    write_version,
)

SHIPPED = Path(__file__).resolve().parents[2] / "model_repository"
SCHEMA = json.loads(SCHEMA_PATH.read_text())


def _valid(data: dict) -> None:
    jsonschema.validate(data, SCHEMA)


def test_every_shipped_model_json_matches_schema_and_round_trips():
    paths = sorted(SHIPPED.glob("*/*/model.json"))
    assert len(paths) >= 5
    for path in paths:
        data = json.loads(path.read_text())
        _valid(data)
        manifest = ModelManifest.read(path)
        assert manifest.to_json() == data
        assert manifest.sha256 == sha256_file(path.with_name("model.onnx"))


def test_writer_output_is_schema_valid_and_read_back_equal(tmp_path):
    manifest = digit_manifest(
        "tiny", [str(d) for d in range(10)], version="3", extra={"training": {"seed": 1}}
    )
    target = write_version(tmp_path / "tiny" / "3", b"onnx bytes", manifest)
    data = json.loads((target / "model.json").read_text())
    _valid(data)
    back = ModelManifest.read(target / "model.json")
    assert back == manifest.replace(sha256=sha256_bytes(b"onnx bytes"))
    assert back.extra == {"training": {"seed": 1}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("labels"), "labels"),
        (lambda d: d.update(output_kind="relu"), "output_kind"),
        (lambda d: d.update(sha256="xyz"), "sha256"),
        (lambda d: d["outputs"][0].update(shape=[-1, 9]), "does not end in 10"),
        (lambda d: d["inputs"][0].update(shape=[28, 28]), "start with -1"),
        (lambda d: d.update(inputs=[d["inputs"][0], d["inputs"][0]]), "exactly one input"),
        (lambda d: d.update(instance_group={"count": 0}), "instance_group"),
        (lambda d: d.update(instance_group={"count": 2, "threads": 1}), "instance_group"),
        (lambda d: d.update(instance_group={"count": 2, "intra_op_threads": -1}), "instance_group"),
        (lambda d: d.update(instance_group={"count": 1, "overflow": "yes"}), "overflow"),
    ],
)
def test_code_and_schema_refuse_the_same_broken_manifests(change, message):
    data = digit_manifest("m", [str(d) for d in range(10)], version="1", sha256="a" * 64).to_json()
    _valid(data)
    change(data)
    with pytest.raises(ModelLoadError, match=message):
        ModelManifest.from_json(data)
    if message != "does not end in 10":  # label/width consistency is beyond JSON Schema
        with pytest.raises(jsonschema.ValidationError):
            _valid(data)


def test_an_instance_group_round_trips_and_stays_out_of_extra():
    data = digit_manifest("m", [str(d) for d in range(10)], version="1", sha256="a" * 64).to_json()
    data["instance_group"] = {"count": 2, "intra_op_threads": 1}
    _valid(data)
    manifest = ModelManifest.from_json(data)
    assert manifest.instances == InstanceGroup(2, 1)
    assert "instance_group" not in manifest.extra
    assert manifest.to_json()["instance_group"] == {"count": 2, "intra_op_threads": 1}
    data["instance_group"] = {"count": 3}
    assert ModelManifest.from_json(data).instances == InstanceGroup(3, 0)
    data["instance_group"] = {"count": 1, "overflow": False}
    _valid(data)
    manifest = ModelManifest.from_json(data)
    assert manifest.instances == InstanceGroup(1, 0, overflow=False)
    assert manifest.to_json()["instance_group"] == {"count": 1, "overflow": False}


def test_sigmoid_needs_two_labels():
    with pytest.raises(ModelLoadError, match="exactly 2 labels"):
        digit_manifest("s", ["a", "b", "c"], output_kind="sigmoid", sha256="a" * 64).check()
