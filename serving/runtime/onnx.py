"""One model version in an onnxruntime session, checked before it may serve."""

from __future__ import annotations

import logging
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from serving.errors import ModelLoadError
from serving.model_format import InstanceGroup, ModelManifest, sha256_file
from serving.runtime.providers import check_active, device_of, select_providers

log = logging.getLogger(__name__)

_OPT_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_ORT_TYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(uint8)": "UINT8"}


@dataclass(frozen=True)
class RuntimeConfig:
    """Session options shared by every model of a server."""

    provider: str = "auto"
    device_id: int = 0
    intra_op_threads: int = 1
    graph_optimization: str = "all"
    # Spinning intra-op threads burn the cores the gRPC event loop needs.
    allow_spinning: bool = False
    available_providers: tuple[str, ...] | None = None
    # Batches smaller than this run on a second, one-thread session (CPU only; 0 = never).
    parallel_min_batch: int = 0
    # Sessions per model version unless its model.json has an instance_group.
    instances: int = 1
    # CPUs this process may use; a model.json with another instance count splits it anew.
    cpu_budget: int = 0
    # The intra-op threads came from the user (--intra-op-threads), not from the budget.
    threads_fixed: bool = False

    def instance_plan(self, group: InstanceGroup | None) -> tuple[int, int]:
        """(sessions, intra-op threads each) for a model version with ``group`` (or none)."""
        count = group.count if group is not None else self.instances
        if group is not None and group.intra_op_threads:
            return count, group.intra_op_threads
        if self.threads_fixed or count == self.instances or not self.cpu_budget:
            return count, self.intra_op_threads
        return count, max(1, self.cpu_budget // count)

    def session_options(self, threads: int | None = None) -> ort.SessionOptions:
        """onnxruntime SessionOptions for this config (``threads``: intra-op threads, default
        ``intra_op_threads``)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads if threads is None else threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = _OPT_LEVELS[self.graph_optimization]
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if self.allow_spinning else "0"
        )
        options.log_severity_level = 3
        return options

    def providers(self) -> list:
        """Provider list for a session (raises ProviderUnavailable for an impossible cuda)."""
        available = self.available_providers or tuple(ort.get_available_providers())
        return select_providers(self.provider, available, self.device_id)


class Sessions:
    """One model file in one or two onnxruntime sessions, and which one a batch runs on.

    With several intra-op threads a small batch costs more CPU than it saves wall time: on
    the reference machine the cnn at batch 1-16 took 16-24% more CPU per image with two
    threads than with one, at batch 64 5% (measured in process; docs/performance.md), and
    a loaded server has no idle core to give. So on the CPU, with ``intra_op_threads`` > 1
    and ``parallel_min_batch`` > 0, batches below ``parallel_min_batch`` images run on a
    one-thread session and larger ones on the session with every intra-op thread. A GPU
    session is never doubled.
    """

    def __init__(
        self, parallel: ort.InferenceSession, small: ort.InferenceSession | None, min_batch: int
    ) -> None:
        self.parallel = parallel
        self.small = small
        self.min_batch = min_batch

    @classmethod
    def open(cls, path: Path, config: RuntimeConfig, threads: int | None = None) -> Sessions:
        """The session(s) ``config`` asks for (``threads``: intra-op threads, default the
        config's); onnxruntime errors propagate."""
        providers = config.providers()
        threads = config.intra_op_threads if threads is None else threads
        parallel = ort.InferenceSession(
            str(path), sess_options=config.session_options(threads), providers=providers
        )
        small = None
        on_cpu = parallel.get_providers()[0] == "CPUExecutionProvider"
        if on_cpu and threads > 1 and config.parallel_min_batch > 0:
            small = ort.InferenceSession(
                str(path), sess_options=config.session_options(threads=1), providers=providers
            )
        return cls(parallel, small, config.parallel_min_batch)

    def for_batch(self, images: int) -> ort.InferenceSession:
        """The session a batch of ``images`` runs on."""
        if self.small is not None and images < self.min_batch:
            return self.small
        return self.parallel


def _dims_match(declared: Sequence[int], actual: Sequence[object]) -> bool:
    if len(declared) != len(actual):
        return False
    # onnxruntime reports a symbolic batch dim as a string (e.g. "N") or None.
    return all(d == -1 or a == d for d, a in zip(declared, actual, strict=True))


class OnnxModel:
    """Verified onnxruntime session(s) with the signature the manifest promises.

    With several instances (Triton's ``instance_group``) each concurrent batch takes a free
    instance for its run, so batches computing at once never share a session and each
    instance's intra-op threads work on one batch.
    """

    def __init__(
        self,
        sessions: Sessions | Sequence[Sessions],
        manifest: ModelManifest,
        provider: str,
        device: str,
        threads: int = 1,
    ) -> None:
        self.instances = [sessions] if isinstance(sessions, Sessions) else list(sessions)
        self.sessions = self.instances[0]
        self.manifest = manifest
        self.provider = provider
        self.device = device
        self.threads = threads
        self._input_name = manifest.input.name
        self._outputs = [manifest.output.name]
        # Last in, first out: batch after batch runs on the instance used last while it is
        # free, whose weights are still in the CPU caches (a FIFO would alternate between
        # copies of the weights and double the memory every run touches).
        self._free: queue.LifoQueue[Sessions] = queue.LifoQueue()
        for instance in reversed(self.instances):
            self._free.put(instance)

    @property
    def instance_count(self) -> int:
        """Sessions (instances) serving this version."""
        return len(self.instances)

    @classmethod
    def load(cls, onnx_path: Path, manifest: ModelManifest, config: RuntimeConfig) -> OnnxModel:
        """Load, verify (hash, signature, probe batch) and return; ModelLoadError otherwise."""
        if not onnx_path.is_file():
            raise ModelLoadError(f"{onnx_path}: missing")
        actual = sha256_file(onnx_path)
        if actual != manifest.sha256:
            raise ModelLoadError(
                f"{onnx_path}: sha256 {actual} does not match model.json ({manifest.sha256})"
            )
        count, threads = config.instance_plan(manifest.instances)
        if config.providers()[0] != "CPUExecutionProvider":
            count = 1  # one GPU session: several would only contend for the same device
        try:
            instances = [Sessions.open(onnx_path, config, threads) for _ in range(count)]
        except ort.capi.onnxruntime_pybind11_state.Fail as exc:
            raise ModelLoadError(f"{onnx_path}: onnxruntime refused it ({exc})") from None
        except Exception as exc:  # corrupt protobufs raise several ORT error types
            if type(exc).__module__.startswith("onnxruntime"):
                raise ModelLoadError(f"{onnx_path}: onnxruntime refused it ({exc})") from None
            raise
        provider = check_active(config.provider, instances[0].parallel.get_providers())
        model = cls(instances, manifest, provider, device_of(provider, config.device_id), threads)
        model._check_signature()
        model._probe()
        return model

    def _check_signature(self) -> None:
        spec_in, spec_out = self.manifest.input, self.manifest.output
        session = self.sessions.parallel
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or inputs[0].name != spec_in.name:
            raise ModelLoadError(
                f"model.json declares input {spec_in.name!r}; the ONNX graph has "
                f"{[i.name for i in inputs]}"
            )
        if _ORT_TYPES.get(inputs[0].type) != spec_in.datatype or not _dims_match(
            spec_in.shape, inputs[0].shape
        ):
            raise ModelLoadError(
                f"model.json declares {spec_in.describe()}; the ONNX graph takes "
                f"{inputs[0].type}{inputs[0].shape}"
            )
        names = [o.name for o in outputs]
        if spec_out.name not in names:
            raise ModelLoadError(f"model.json declares output {spec_out.name!r}; graph has {names}")

    def _probe(self) -> None:
        # A real batch through the real session: catches graphs that load but
        # cannot run, and outputs whose width disagrees with the labels.
        shape = [2 if d == -1 else d for d in self.manifest.input.shape]
        probe = np.zeros(shape, dtype=np.float32)
        try:
            out = self.run(probe)
            if self.sessions.small is not None:  # the batch-size split must not change answers
                small = self.sessions.small.run(self._outputs, {self._input_name: probe})[0]
                if not np.allclose(small, out, rtol=1e-4, atol=1e-5):
                    raise ModelLoadError("probe batch: the one-thread session answers differently")
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"probe batch failed: {exc}") from None
        expected = (2, *self.manifest.output.shape[1:])
        if out.shape != expected:
            raise ModelLoadError(
                f"probe batch gave shape {list(out.shape)}, expected {list(expected)}"
            )
        if not np.isfinite(out).all():
            raise ModelLoadError("probe batch gave NaN/Inf")
        if self.manifest.output_kind == "softmax" and not np.allclose(
            out.sum(axis=1), 1, atol=1e-3
        ):
            raise ModelLoadError("probe batch: softmax outputs do not sum to 1")

    def run(self, images: np.ndarray) -> np.ndarray:
        """Run one batch on a free instance (called from a compute thread; waits for an
        instance when every one is busy)."""
        instance = self._free.get()
        try:
            session = instance.for_batch(images.shape[0])
            return session.run(self._outputs, {self._input_name: images})[0]
        finally:
            self._free.put(instance)
