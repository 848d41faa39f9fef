"""bench/triton_peer.py: the Triton model repository it writes from a digits repository."""

from bench.triton_peer import MODEL_PY, TritonConfig, config_pbtxt, write_repository
from serving.model_format import ModelManifest
from tests.helpers.tiny_models import linear_softmax, publish


def test_config_asks_for_the_instances_threads_and_batching_given(tmp_path):
    manifest = ModelManifest.read(
        publish(tmp_path, "cnn", 1, linear_softmax(seed=1)) / "model.json"
    )
    text = config_pbtxt(manifest, TritonConfig(instances=3, intra_op_threads=2))
    assert 'name: "cnn"' in text and 'backend: "python"' in text
    assert "max_batch_size: 64" in text
    assert 'input [ { name: "images" data_type: TYPE_FP32 dims: [ 28, 28 ] } ]' in text
    assert 'output [ { name: "probabilities" data_type: TYPE_FP32 dims: [ 10 ] } ]' in text
    assert "max_queue_delay_microseconds: 500" in text
    assert "instance_group [ { count: 3 kind: KIND_CPU } ]" in text
    assert 'string_value: "2"' in text


def test_repository_takes_the_newest_version_with_the_model_py(tmp_path):
    source = tmp_path / "digits"
    publish(source, "cnn", 1, linear_softmax(seed=1))
    newest = publish(source, "cnn", 10, linear_softmax(seed=2))
    repo = write_repository(tmp_path / "triton", source, ["cnn"], TritonConfig())
    assert (repo / "cnn" / "1" / "model.onnx").read_bytes() == (newest / "model.onnx").read_bytes()
    assert (repo / "cnn" / "1" / "model.py").read_text() == MODEL_PY.read_text()
    assert "count: 2" in (repo / "cnn" / "config.pbtxt").read_text()
