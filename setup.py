"""Build hooks: compile protos/ into serving/api, ship model_repository/ as package data.

Generated code is not kept in git; every install (regular or editable)
regenerates it, so the stubs always match the pinned protobuf runtime.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "serving" / "api"
MODELS = ROOT / "model_repository"
# Where a regular (non-editable) install finds the shipped models; the same name is
# looked up by serving.settings.default_repository().
PACKAGED_MODELS = Path("serving") / "_models"


def compile_protos() -> None:
    """Compile every .proto under protos/ into flat modules (and .pyi stubs) in serving/api."""
    import tempfile

    from grpc_tools import protoc

    OUT.mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *map(str, protos),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {protos}")
        for generated in Path(tmp).rglob("*_pb2*.py*"):
            text = generated.read_text()
            # protoc writes absolute imports from the proto path ("from digits.v1
            # import digits_pb2"); the modules live flat in serving.api instead.
            text = re.sub(
                r"^from [\w.]+ import (\w+_pb2) as",
                r"from serving.api import \1 as",
                text,
                flags=re.M,
            )
            (OUT / generated.name).write_text(text)


def copy_models(build_lib: Path) -> None:
    """Copy the whole model_repository/ tree into the build as serving/_models.

    The checkout's model_repository/ stays the single source: every model and version
    published there (a new model too) ships in the next wheel without touching this file.
    A tree without it (e.g. the server image, which bakes /models in) builds a wheel
    without models.
    """
    target = build_lib / PACKAGED_MODELS
    if target.exists():
        shutil.rmtree(target)
    if MODELS.is_dir():
        # model.keras (kept for fine-tuning) stays out: the server reads only model.onnx, and
        # fine-tuning needs TensorFlow and a writable repository, which a wheel install lacks.
        shutil.copytree(
            MODELS, target, ignore=shutil.ignore_patterns(".*", "__pycache__", "*.keras")
        )


class BuildProtos(Command):
    """``python setup.py build_protos``: regenerate serving/api by hand."""

    user_options: list = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        compile_protos()


class BuildPy(build_py):
    def run(self) -> None:
        compile_protos()
        super().run()
        # An editable install serves the checkout's model_repository/ directly.
        if not self.editable_mode:
            copy_models(Path(self.build_lib))


setup(cmdclass={"build_py": BuildPy, "build_protos": BuildProtos})
