"""Data that flows between the layers: plain dataclasses holding ndarrays.

The bottom of the package: imports only the model format. Transports convert their wire
messages to and from these; the inference core never sees a protobuf or an HTTP request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.model_format import ModelManifest, TensorSpec

__all__ = [
    "IndexEntry",
    "InferResult",
    "ModelManifest",
    "ModelMetadata",
    "ModelSummary",
    "ServerInfo",
    "TensorSpec",
]


@dataclass(frozen=True, slots=True)
class InferResult:
    """Output rows for exactly the images of one request."""

    outputs: np.ndarray
    model: str
    version: str
    provider: str
    manifest: ModelManifest
    # The [N,28,28] float32 images the model saw, when the caller asked for them.
    prepared: np.ndarray | None = None
    # [N,28,28] occlusion saliency of each predicted label, when the caller asked to explain.
    saliency: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Server name, version and the protocol extensions it offers."""

    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """A model's versions (newest first) and its tensors (of the newest, or the one asked for)."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """What the typed APIs say about one model: ready or not, and how to use it."""

    name: str
    ready: bool
    version: str = ""
    versions: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    description: str = ""
    test_accuracy: float = 0.0
    provider: str = ""
    input: TensorSpec | None = None
    max_batch_size: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One row of the repository index: a version on disk or loaded, and its state."""

    name: str
    version: str
    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Triton's model-configuration extension: how a model version is served."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    # Full shapes (-1 = batch); transports drop the batch dim, as Triton shows dims.
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_queue_delay_us: int
    preferred_batch_sizes: tuple[int, ...]
    instance_kind: str  # "KIND_CPU" or "KIND_GPU"
    instance_count: int
    versions_kept: int
    labels: tuple[str, ...]
    # Full batches overflow onto the one-thread session copy when every instance is busy.
    overflow_session: bool = False
    # serving.json as applied: ("served_version" | "shadow_version" | "previous_version", v).
    serving: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DurationStat:
    """A count of events and their total duration in nanoseconds (Triton's StatisticDuration)."""

    count: int = 0
    ns: int = 0


@dataclass(frozen=True, slots=True)
class BatchStat:
    """How often a batch of ``batch_size`` ran, and its compute time."""

    batch_size: int
    compute_infer: DurationStat


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Triton's statistics extension for one loaded model version (cumulative since load)."""

    name: str
    version: str
    last_inference_ms: int  # ms since the epoch, 0 = never
    inference_count: int  # images (Triton: inferences, each batch item counts)
    execution_count: int  # batches run
    success: DurationStat  # requests answered, end-to-end time in the core
    fail: DurationStat  # requests refused or failed in the core
    queue: DurationStat  # time requests waited for their batch
    compute_infer: DurationStat  # per request: its batch's compute time (as Triton counts)
    batch_stats: tuple[BatchStat, ...]
