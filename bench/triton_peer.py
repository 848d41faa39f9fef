"""NVIDIA Triton Inference Server as a benchmark peer, from the PyPI wheel ``nvidia-pytriton``.

    python -m bench.triton_peer setup            # its own venv in .venv-triton (~2-3 min once)
    python -m bench.triton_peer serve --model cnn --instances 2   # serve until Ctrl-C

The wheel ``nvidia-pytriton==0.7.0`` ships a real ``tritonserver`` (server 2.51.0), its
libraries and the Python backend, but no onnxruntime backend: each model is a Python-backend
``model.py`` (bench/triton_model.py) running onnxruntime, with Triton's dynamic batcher and
``instance_group`` (KIND_CPU, one session per instance). The wheel wants numpy<2, so Triton
lives in its own venv, never in the project's dependencies. The server is launched the way
PyTriton itself launches it: the ``tritonserver`` tree copied without the backend stubs, the
stub for this Python version put into ``backends/python/``, ``LD_LIBRARY_PATH`` set to the
wheel's libraries and the venv's ``bin`` first on ``PATH`` (the stub imports numpy and
onnxruntime from there).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.host import ROOT
from clients.processes import HOST, ChildProcess, free_port
from clients.server_process import ReadyLine
from serving.model_format import ModelManifest

VENV = ROOT / ".venv-triton"
PINS = ("nvidia-pytriton==0.7.0", "numpy<2", "onnxruntime==1.32.0")
MODEL_PY = Path(__file__).with_name("triton_model.py")
READY_TIMEOUT_S = 120.0
_PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
# V2 datatype -> Triton config data_type.
_TYPES = {"FP32": "TYPE_FP32", "FP64": "TYPE_FP64", "UINT8": "TYPE_UINT8"}


@dataclass(frozen=True)
class TritonConfig:
    """What each model's config.pbtxt asks of Triton (the issue's best settings by default)."""

    instances: int = 2
    intra_op_threads: int = 1
    max_batch_size: int = 64
    max_queue_delay_us: int = 500

    @property
    def label(self) -> str:
        """Short name for tables: ``triton x2`` (instances)."""
        return f"triton x{self.instances}"


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{_PY}" / "site-packages"


def ensure_venv(venv: Path = VENV) -> Path:
    """Create ``venv`` with Triton's wheel and onnxruntime unless it already has them."""
    marker = venv / "digits-bench-pins.txt"
    if marker.is_file() and marker.read_text().split() == list(PINS):
        return venv
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PINS]
    subprocess.run(pip, check=True)
    marker.write_text("\n".join(PINS) + "\n")
    return venv


def prepare_server(venv: Path, dest: Path) -> Path:
    """The ``tritonserver`` tree in ``dest`` with this Python's backend stub; its root."""
    dist = _site_packages(venv) / "pytriton" / "tritonserver"
    if not dist.is_dir():
        raise FileNotFoundError(f"{dist} missing: run `python -m bench.triton_peer setup` first")
    root = dest / "tritonserver"
    shutil.copytree(dist, root, ignore=shutil.ignore_patterns("python_backend_stubs"))
    stub = dist / "python_backend_stubs" / _PY / "triton_python_backend_stub"
    shutil.copy(stub, root / "backends" / "python" / "triton_python_backend_stub")
    return root


def config_pbtxt(manifest: ModelManifest, config: TritonConfig) -> str:
    """Triton's model configuration for one digits model version."""
    spec_in, spec_out = manifest.input, manifest.output
    dims_in = ", ".join(str(d) for d in spec_in.shape[1:])
    dims_out = ", ".join(str(d) for d in spec_out.shape[1:])
    return (
        f'name: "{manifest.name}"\n'
        'backend: "python"\n'
        f"max_batch_size: {config.max_batch_size}\n"
        f'input [ {{ name: "{spec_in.name}" data_type: {_TYPES[spec_in.datatype]} '
        f"dims: [ {dims_in} ] }} ]\n"
        f'output [ {{ name: "{spec_out.name}" data_type: {_TYPES[spec_out.datatype]} '
        f"dims: [ {dims_out} ] }} ]\n"
        f"dynamic_batching {{ max_queue_delay_microseconds: {config.max_queue_delay_us} }}\n"
        f"instance_group [ {{ count: {config.instances} kind: KIND_CPU }} ]\n"
        'parameters { key: "intra_op_threads" value: { string_value: '
        f'"{config.intra_op_threads}" }} }}\n'
    )


def write_repository(dest: Path, source: Path, models: Sequence[str], config: TritonConfig) -> Path:
    """A Triton model repository in ``dest`` with the newest version of each of ``models``
    found in the digits repository ``source``."""
    for model in models:
        versions = sorted((p for p in (source / model).iterdir() if p.name.isdigit()), key=_num)
        version = versions[-1]
        manifest = ModelManifest.read(version / "model.json")
        target = dest / model / "1"
        target.mkdir(parents=True)
        shutil.copy(version / "model.onnx", target / "model.onnx")
        shutil.copy(MODEL_PY, target / "model.py")
        (dest / model / "config.pbtxt").write_text(config_pbtxt(manifest, config))
    return dest


def _num(path: Path) -> int:
    return int(path.name)


class TritonProcess(ChildProcess):
    """A running ``tritonserver``; :attr:`ports` looks like a digits server's ready line."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], grpc: int, http: int) -> None:
        super().__init__(argv, name="tritonserver", env=env)
        self.ports = ReadyLine("tritonserver", grpc, http, None, self.pid)

    def wait_ready(self, models: Sequence[str], timeout: float = READY_TIMEOUT_S) -> None:
        """Until both endpoints have started (Triton loads every model before that)."""
        deadline = time.monotonic() + timeout
        wanted = ("Started GRPCInferenceService", "Started HTTPService")
        while not all(line in self.log_text() for line in wanted):
            if not self.alive():
                raise self.exited_error(f"it served {list(models)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"tritonserver not ready in {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.1)

    @property
    def grpc_address(self) -> str:
        """host:port of the gRPC listener."""
        return f"{HOST}:{self.ports.grpc}"


def start_triton(
    repository: Path, server_root: Path, venv: Path, models: Sequence[str]
) -> TritonProcess:
    """``tritonserver`` on ``repository``, gRPC and HTTP on loopback, ready.

    Triton cannot bind port 0 for both listeners and report them, so free ports are picked
    just before the start and the start is retried if one was taken meanwhile.
    """
    env = dict(os.environ)
    libs = str(_site_packages(venv) / "nvidia_pytriton.libs")
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (env.get("LD_LIBRARY_PATH"), libs) if p)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    for attempt in range(3):
        grpc, http = free_port(), free_port()
        argv = [
            str(server_root / "bin" / "tritonserver"),
            f"--model-repository={repository}",
            f"--backend-directory={server_root / 'backends'}",
            f"--cache-directory={server_root / 'caches'}",
            "--backend-config=python,shm-default-byte-size=4194304",
            f"--grpc-address={HOST}",
            f"--grpc-port={grpc}",
            f"--http-address={HOST}",
            f"--http-port={http}",
            "--allow-metrics=false",
            "--log-verbose=0",
        ]
        server = TritonProcess(argv, env, grpc, http)
        try:
            server.wait_ready(models)
            return server
        except Exception:
            server.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def main(argv: Sequence[str] | None = None) -> int:
    """``setup`` the venv, or ``serve`` models from the shipped repository until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m bench.triton_peer", description=__doc__)
    parser.add_argument("action", choices=("setup", "serve"))
    parser.add_argument("--model", action="append", help="model to serve (repeatable)")
    parser.add_argument("--instances", type=int, default=TritonConfig.instances)
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    args = parser.parse_args(argv)
    venv = ensure_venv()
    if args.action == "setup":
        print(f"Triton venv ready: {venv}")
        return 0
    import tempfile

    models = args.model or ["cnn", "mlp100"]
    with tempfile.TemporaryDirectory() as tmp:
        repo = write_repository(
            Path(tmp) / "models", args.repository, models, TritonConfig(args.instances)
        )
        server = start_triton(repo, prepare_server(venv, Path(tmp)), venv, models)
        print(f"tritonserver grpc={server.ports.grpc} http={server.ports.http}", flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
