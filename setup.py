"""Build hook: compile protos/ into serving/api with grpcio-tools.

Generated code is not kept in git; every install (regular or editable)
regenerates it, so the stubs always match the pinned protobuf runtime.
"""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "serving" / "api"


def compile_protos() -> None:
    """Compile every .proto under protos/ into flat modules in serving/api."""
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
    (OUT / "__init__.py").write_text('"""Code generated from protos/ at build time."""\n')


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


setup(cmdclass={"build_py": BuildPy, "build_protos": BuildProtos})
