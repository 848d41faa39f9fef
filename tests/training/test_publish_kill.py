"""SIGKILL a publishing process at random points, many times: no partial version ever appears.

The child publishes tiny models in a loop through training.publish (the same code the
trainer uses); the parent kills it at a random moment and then checks every integer
version directory the way the server would load it.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from serving.model_format import ModelManifest
from serving.repository.layout import scan
from serving.runtime.onnx import OnnxModel, RuntimeConfig, sha256_file

ROOT = Path(__file__).resolve().parents[2]
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from tests.helpers.tiny_models import linear_softmax, manifest
    from training.publish import staging

    repo = Path(sys.argv[1])
    data = linear_softmax(seed=3).SerializeToString()
    print("ready", flush=True)
    while True:
        with staging(repo, "cnn") as stage:
            # Several writes per version widen the window a kill can land in.
            for i in range(4):
                (stage.path / f"extra-{i}.bin").write_bytes(data)
            (stage.path / "model.onnx").write_bytes(data)
            stage.commit(manifest("cnn", "0", data))
    """
)


def check_repository(repo: Path) -> int:
    """Every integer version is complete and loadable; returns how many there are."""
    versions = scan(repo).get("cnn", [])
    for version in versions:
        manifest = ModelManifest.read(version.manifest_path)
        assert manifest.version == version.version
        assert sha256_file(version.onnx_path) == manifest.sha256
        assert json.loads(version.manifest_path.read_text())["name"] == "cnn"
    if versions:
        OnnxModel.load(
            versions[-1].onnx_path, ModelManifest.read(versions[-1].manifest_path), RuntimeConfig()
        )
    return len(versions)


def test_sigkill_during_publish_never_leaves_a_partial_version(tmp_path):
    repo = tmp_path / "models"
    rng = random.Random(7)
    kills = 0
    for _ in range(15):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(repo), str(ROOT)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.12))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        kills += 1
        check_repository(repo)
    published = check_repository(repo)
    leftovers = [p.name for p in (repo / "cnn").iterdir() if p.name.startswith(".tmp-")]
    print(f"\n{kills} kills, {published} complete versions, {len(leftovers)} staging leftovers")
    assert published > 0
