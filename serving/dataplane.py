"""The one inference core every transport calls: health, metadata, checked inference, repository.

Transports (gRPC typed, gRPC V2, HTTP) turn wire messages into ndarrays or encoded files and
call one method here; every rule about what a model accepts lives here, checked against the
model's own signature (its model.json ``TensorSpec``), so the protocols cannot drift apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from serving import __version__
from serving.decoding import DecodePool
from serving.errors import InvalidInput, ModelNotFound, ModelNotReady, PermissionDenied
from serving.explain import SIDE, occlusion_plan
from serving.feedback.answers import RecentAnswers
from serving.model_format import PIXEL_SCALE, TensorSpec
from serving.predictions import probabilities_of
from serving.reading import ReadResult, check_reads_digits, read_result
from serving.registry import LoadedVersion, ModelRegistry, Selection
from serving.repository.manager import RepositoryManager
from serving.repository.policy import ServingPolicy
from serving.request_context import note_model
from serving.runtime.providers import CUDA
from serving.statistics import merge_statistics
from serving.tensors import NUMPY_TO_V2, V2_TO_NUMPY, all_finite
from serving.types import (
    IndexEntry,
    InferResult,
    ModelConfig,
    ModelMetadata,
    ModelStats,
    ModelSummary,
    ServerInfo,
)

SERVER_NAME = "digits-server"
# Triton's backend name for what platform "onnxruntime_onnx" runs on.
BACKEND = "onnxruntime"
# Applies a successful load/unload ("load" | "unload", model name) in every worker process.
Replicator = Callable[[str, str], Awaitable[None]]
# (name, version) -> the other workers' statistics, one list of snapshots per worker.
Gatherer = Callable[[str, str], Awaitable[list[list[ModelStats]]]]


@dataclass(frozen=True, slots=True)
class CoreLimits:
    """Per-request limits enforced by the core, whatever the transport."""

    max_images_per_request: int
    max_batch_size: int
    model_control: bool
    # Images one explain request may carry (each costs one image per occluded window).
    max_explain_images: int = 8


class DataPlane:
    """Validates requests against a model's signature and sends them to its batcher."""

    def __init__(
        self,
        registry: ModelRegistry,
        manager: RepositoryManager,
        decoder: DecodePool,
        limits: CoreLimits,
        default_model: str,
    ) -> None:
        self._registry = registry
        self._manager = manager
        self._decoder = decoder
        self._limits = limits
        self.default_model = default_model
        self._draining = False
        self._started = False
        self._listeners: list[Callable[[], None]] = []
        # Worker processes only: the supervisor's word on the other workers, and how a
        # repository change made here reaches them.
        self._peers_ready = True
        self._replicate: Replicator | None = None
        self._gather: Gatherer | None = None
        # Typed answers kept for feedback by request id (serving/feedback/answers.py).
        self._answers: RecentAnswers | None = None

    # ------------------------------------------------------------------ lifecycle

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever readiness may have changed (start, drain, model swaps)."""
        self._listeners.append(listener)

    def changed(self) -> None:
        """Tell listeners that readiness may have changed."""
        for listener in self._listeners:
            listener()

    async def start(self) -> None:
        """Load the repository; the server is ready once this returns with a model loaded."""
        await self._manager.sync()
        self._started = True
        self.changed()

    def drain(self) -> None:
        """Refuse new requests from now on (in-flight ones finish)."""
        self._draining = True
        self.changed()

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` was called."""
        return self._draining

    # ------------------------------------------------------------------ health

    def live(self) -> bool:
        """The process is up and its event loop answers."""
        return True

    def ready(self) -> bool:
        """Ready here and, with worker processes, every other worker ready too."""
        return self._peers_ready and self.ready_here()

    def ready_here(self) -> bool:
        """Initial load done, not draining, at least one model serving (in this process)."""
        return self._started and not self._draining and bool(self._registry.ready_models())

    def set_peers_ready(self, ready: bool) -> None:
        """Worker processes: whether every worker is ready, as the supervisor sees it."""
        if ready != self._peers_ready:
            self._peers_ready = ready
            self.changed()

    def replicate_with(self, replicate: Replicator) -> None:
        """Worker processes: after a load/unload succeeds here, ``replicate`` applies it in
        every other worker before the call answers."""
        self._replicate = replicate

    def gather_statistics_with(self, gather: Gatherer) -> None:
        """Worker processes: ``gather(name, version)`` returns the other workers' statistics
        snapshots, which :meth:`model_statistics` adds to this worker's own."""
        self._gather = gather

    def keep_answers_in(self, answers: RecentAnswers | None) -> None:
        """Typed classify calls given an ``answer_id`` keep their answer in ``answers``."""
        self._answers = answers

    def model_ready(self, name: str, version: str = "") -> bool:
        """Whether ``name`` (and ``version``) can serve now; unknown models raise NotFound."""
        try:
            self.resolve(name, version)
        except ModelNotReady:
            return False
        return True

    def model_health(self) -> dict[str, bool]:
        """Every known model name -> can it serve now."""
        serving = not self._draining
        return {name: serving and state.ready for name, state in self._registry.models.items()}

    def ready_models(self) -> list[str]:
        """Names with at least one loaded version."""
        return self._registry.ready_models()

    def resolve(self, name: str, version: str = "") -> LoadedVersion:
        """The loaded version a request goes to (raises NotFound / NotReady)."""
        if self._draining:
            raise ModelNotReady("server is shutting down; retry on another replica")
        return self._registry.resolve(name or self.default_model, version)

    def resolve_for_inference(self, name: str, version: str = "") -> LoadedVersion:
        """:meth:`resolve` for an inference request, which is labelled with the version at
        once: one refused later (bad input: 400 / INVALID_ARGUMENT) is counted under its
        model, not model=""."""
        target = self.resolve(name, version)
        note_model(target.name, target.version)
        return target

    # ------------------------------------------------------------------ metadata

    def server_info(self) -> ServerInfo:
        """Name, version and protocol extensions."""
        extensions = ["model_configuration", "statistics"]
        if self._limits.model_control:
            extensions.insert(0, "model_repository")
        return ServerInfo(SERVER_NAME, __version__, tuple(extensions))

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata:
        """Versions and tensors of a model (of one version when ``version`` is given)."""
        target = self.resolve(name, version)
        if version:
            versions: tuple[str, ...] = (target.version,)
        else:
            versions = tuple(self._registry.models[target.name].version_names())
        manifest = target.manifest
        return ModelMetadata(
            target.name, versions, manifest.platform, (manifest.input,), (manifest.output,)
        )

    def model_info(self, name: str, version: str = "") -> ModelSummary:
        """The typed APIs' description of one loaded model version."""
        target = self.resolve(name, version)
        return self._summary(target, self._registry.models[target.name].version_names())

    def list_models(self) -> list[ModelSummary]:
        """Every known model, sorted by name; models with nothing loaded say why."""
        out = []
        for name, state in sorted(self._registry.models.items()):
            if state.versions:
                out.append(self._summary(state.versions[0], state.version_names()))
            else:
                out.append(ModelSummary(name=name, ready=False, error=state.last_error))
        return out

    def _summary(self, target: LoadedVersion, loaded: Sequence[str]) -> ModelSummary:
        manifest = target.manifest
        return ModelSummary(
            name=target.name,
            ready=True,
            version=target.version,
            versions=tuple(loaded),
            labels=manifest.labels,
            description=manifest.description,
            test_accuracy=manifest.test_accuracy,
            provider=target.model.provider,
            input=manifest.input,
            max_batch_size=self._limits.max_batch_size,
        )

    # ------------------------------------------------------------------ inference

    def _check_count(self, count: int, what: str) -> None:
        if count == 0:
            raise InvalidInput(f"{what}: empty batch (no images)")
        limit = self._limits.max_images_per_request
        if count > limit:
            raise InvalidInput(
                f"{what}: {count} images in one request; the limit is {limit} (split the request)"
            )

    def check_tensor(
        self, target: LoadedVersion, tensor: np.ndarray, input_name: str = ""
    ) -> np.ndarray:
        """Return ``tensor`` shaped as the model's input, or raise InvalidInput saying why.

        Accepted: the input's own shape with any batch size, or each item flattened
        (e.g. [-1,784] for a [-1,28,28] input).
        """
        spec = target.manifest.input
        if input_name and input_name != spec.name:
            raise InvalidInput(
                f"model {target.name!r} has no input {input_name!r}; it takes {spec.describe()}"
            )
        item = spec.shape[1:]
        flat = math.prod(item)

        def expected() -> str:  # built only for an error: this runs on every request
            dims = ",".join(map(str, spec.shape))
            limit = self._limits.max_images_per_request
            return f"{spec.datatype}[{dims}] (or [-1,{flat}]), -1 = batch of 1..{limit}"

        if tensor.dtype != V2_TO_NUMPY[spec.datatype]:
            got = NUMPY_TO_V2.get(tensor.dtype, tensor.dtype.name)
            raise InvalidInput(f"input {spec.name!r}: expected {expected()}, got datatype {got}")
        shape = tensor.shape
        if not shape or not (shape[1:] == item or (len(shape) == 2 and shape[1] == flat)):
            raise InvalidInput(
                f"input {spec.name!r}: expected shape {expected()}, "
                f"got {spec.datatype}{list(shape)}"
            )
        self._check_count(shape[0], f"input {spec.name!r}")
        # One reduction instead of isfinite + all (serving/tensors.py): on a cold cache (every
        # request in a server) it costs ~20 us less.
        if tensor.dtype.kind == "f" and not all_finite(tensor):
            raise InvalidInput(f"input {spec.name!r}: contains NaN or Inf values")
        return tensor.reshape((shape[0], *item))

    async def infer(
        self,
        name: str,
        version: str,
        inputs: Sequence[tuple[str, np.ndarray]],
        deadline: float | None = None,
        outputs: Sequence[str] = (),
    ) -> InferResult:
        """Run one model version on named input tensors through its batcher (the V2 APIs).

        ``deadline`` is a time.monotonic() value; requests still queued then
        are dropped with DeadlineExceeded and never computed.
        """
        target = self.resolve_for_inference(name, version)
        with target.stats.request():
            if len(inputs) != 1:
                raise InvalidInput(
                    f"expected exactly 1 input tensor, got {len(inputs)}: model {target.name!r} "
                    f"takes {target.manifest.input.describe()} (see its metadata)"
                )
            input_name, tensor = inputs[0]
            batch = self.check_tensor(target, tensor, input_name)
            output_name = target.manifest.output.name
            for requested in outputs:
                if requested != output_name:
                    raise InvalidInput(
                        f"model {target.name!r} has no output {requested!r}; it has {output_name!r}"
                    )
            return await self._run(target, batch, deadline, tag=_shadow_tag(version))

    async def classify_pixels(
        self,
        name: str,
        version: str,
        pixels: np.ndarray,
        deadline: float | None = None,
        keep_prepared: bool = False,
        explain: bool = False,
        answer_id: str = "",
    ) -> InferResult:
        """Classify MNIST-style images: uint8 0..255 or float32 0..1, [N,28,28] (typed APIs).

        ``explain`` adds an occlusion saliency map per image (serving/explain.py);
        ``answer_id``: keep the answer under this id for feedback (when answers are kept).
        """
        if explain:
            self._check_explain(len(pixels))
        target = self.resolve_for_inference(name, version)
        with target.stats.request():
            if pixels.dtype == np.uint8:
                # Same normalisation as training: pixel / 255.
                pixels = pixels.astype(np.float32) * np.float32(PIXEL_SCALE)
            elif pixels.dtype != np.float32:
                raise InvalidInput(f"pixels must be uint8 or float32, got {pixels.dtype.name}")
            batch = self.check_tensor(target, pixels)
            return await self._answer(
                target, batch, deadline, keep_prepared, explain, version, answer_id
            )

    async def classify_encoded(
        self,
        name: str,
        version: str,
        files: Sequence[bytes],
        deadline: float | None = None,
        keep_prepared: bool = False,
        explain: bool = False,
        answer_id: str = "",
    ) -> InferResult:
        """Classify PNG/JPEG files of any size, converted the MNIST way (typed APIs).

        ``answer_id``: keep the answer under this id for feedback (when answers are kept).
        """
        self._check_count(len(files), "encoded images")
        if explain:
            self._check_explain(len(files))
        # Decoding is the expensive part: an unknown model fails before it.
        target = self.resolve_for_inference(name, version)
        with target.stats.request():
            images = await self._decoder.prepare(files)
            batch = self.check_tensor(target, images)
            return await self._answer(
                target, batch, deadline, keep_prepared, explain, version, answer_id
            )

    async def _answer(
        self,
        target: LoadedVersion,
        batch: np.ndarray,
        deadline: float | None,
        keep_prepared: bool,
        explain: bool,
        version: str,
        answer_id: str,
    ) -> InferResult:
        """A typed classify call's answer, kept under ``answer_id`` for feedback."""
        prepared = self._prepared(batch, keep_prepared)
        tag = _shadow_tag(version, answer_id)
        return self._kept(
            answer_id, await self._run(target, batch, deadline, prepared, explain, tag)
        )

    def _prepared(self, batch: np.ndarray, keep: bool) -> np.ndarray | None:
        """The prepared batch to hand back with the result: when asked, or to keep answers
        (a reference to an array the call made anyway, never a copy)."""
        return batch if keep or self._answers is not None else None

    def _kept(self, answer_id: str, result: InferResult) -> InferResult:
        if answer_id and self._answers is not None:
            self._answers.keep(answer_id, result)
        return result

    async def read(
        self,
        name: str,
        version: str,
        data: bytes,
        deadline: float | None = None,
        keep_prepared: bool = False,
    ) -> ReadResult:
        """Read every digit of one PNG/JPEG (a number), all digits in one batch."""
        target = self.resolve_for_inference(name, version)
        check_reads_digits(target.name, target.manifest.labels)
        with target.stats.request():
            reading = await self._decoder.read(data)
            self._check_count(len(reading.images), "digits found in the image")
            batch = self.check_tensor(target, reading.images)
            prepared = batch if keep_prepared else None
            return read_result(
                reading,
                await self._run(target, batch, deadline, prepared, tag=_shadow_tag(version)),
            )

    async def _run(
        self,
        target: LoadedVersion,
        batch: np.ndarray,
        deadline: float | None,
        prepared: np.ndarray | None = None,
        explain: bool = False,
        tag: str | None = None,
    ) -> InferResult:
        # ``tag``: the shadow's word for this request (see _shadow_tag).
        # Callers hold ``target.stats.request()`` around this and their checks, so every
        # request that reached a model counts once: success, or failure with its reason.
        manifest = target.manifest
        if explain:
            return await self._explained(target, batch, deadline, prepared)
        rows = await target.batcher.submit(batch, deadline, tag)
        target.metrics.answered(probabilities_of(rows, manifest.output_kind), manifest.labels)
        return InferResult(
            rows, target.name, target.version, target.model.provider, manifest, prepared
        )

    def _check_explain(self, count: int) -> None:
        limit = self._limits.max_explain_images
        if count > limit:
            raise InvalidInput(
                f"explain: {count} images in one request; the limit is {limit} (each costs "
                "one inference per occluded window: split the request or drop explain)"
            )

    async def _explained(
        self,
        target: LoadedVersion,
        batch: np.ndarray,
        deadline: float | None,
        prepared: np.ndarray | None,
    ) -> InferResult:
        """Answer ``batch`` with a saliency map per image: the images and all their occluded
        copies go through the batcher as one request (one batched inference)."""
        manifest = target.manifest
        if batch[0].size != SIDE * SIDE:
            raise InvalidInput(f"explain needs a model of 28x28 images; {target.name!r} is not")
        occluded = occlusion_plan(batch)
        rows = await target.batcher.submit(occluded.inputs.reshape(-1, *batch.shape[1:]), deadline)
        probabilities = probabilities_of(rows, manifest.output_kind)
        answered = probabilities[occluded.originals]
        # Only the images asked about are answers; their masked copies are not.
        target.metrics.answered(answered, manifest.labels)
        saliency = occluded.saliency(probabilities, answered.argmax(axis=1))
        return InferResult(
            rows[occluded.originals],
            target.name,
            target.version,
            target.model.provider,
            manifest,
            prepared,
            saliency,
        )

    # ------------------------------------------------------------------ Triton extensions

    def model_config(self, name: str, version: str = "") -> ModelConfig:
        """How a model version is served (Triton's model-configuration extension).

        Tensors keep their full shapes (-1 = batch); transports drop the batch dimension,
        as Triton shows dims when ``max_batch_size`` > 0. Batching values are the ones this
        version's batcher uses.
        """
        target = self.resolve(name, version)
        manifest = target.manifest
        limits = target.batcher.limits
        return ModelConfig(
            name=target.name,
            platform=manifest.platform,
            backend=BACKEND,
            max_batch_size=limits.max_batch_size,
            inputs=(manifest.input,),
            outputs=(manifest.output,),
            max_queue_delay_us=round(limits.max_queue_delay_s * 1_000_000),
            preferred_batch_sizes=(),
            instance_kind="KIND_GPU" if target.model.provider == CUDA else "KIND_CPU",
            # onnxruntime sessions of this version (model.json instance_group or the server's).
            instance_count=target.model.instance_count,
            overflow_session=target.model.overflow is not None,
            versions_kept=self._manager.max_versions,
            labels=manifest.labels,
            serving=self._serving_roles(target.name),
        )

    def _serving_roles(self, name: str) -> tuple[tuple[str, str], ...]:
        state = self._registry.models[name]
        selection, answering = state.selection, state.answering
        if selection == Selection():
            return ()  # no serving.json choices: the newest answers, as always
        roles = (
            ("served_version", answering.version if answering is not None else ""),
            ("shadow_version", selection.shadow.version if selection.shadow is not None else ""),
            ("previous_version", selection.previous or ""),
        )
        return tuple((key, value) for key, value in roles if value)

    async def model_statistics(self, name: str = "", version: str = "") -> list[ModelStats]:
        """Cumulative statistics per loaded version (Triton's statistics extension).

        No ``name``: every loaded version of every model; a name without ``version``: every
        loaded version of that model. With worker processes, summed over every worker.
        Answers while draining too (a last look before exit).
        """
        own = self.local_statistics(name, version)
        if self._gather is None:
            return own
        return merge_statistics([own, *await self._gather(name, version)])

    def local_statistics(self, name: str = "", version: str = "") -> list[ModelStats]:
        """:meth:`model_statistics` of this process alone (unknown models raise as there)."""
        if not name:
            if version:
                raise InvalidInput("statistics for a version need the model's name too")
            models = sorted(self._registry.models.items())
            targets = [v for _, state in models for v in state.versions]
        elif version:
            targets = [self._registry.resolve(name, version)]
        else:
            self._registry.resolve(name)  # unknown -> NotFound, nothing loaded -> NotReady
            targets = list(self._registry.models[name].versions)
        return [target.stats.snapshot() for target in targets]

    # ------------------------------------------------------------------ repository

    async def repository_index(self, ready_only: bool = False) -> list[IndexEntry]:
        """Every version on disk or loaded, with its state."""
        rows = [IndexEntry(*row) for row in await self._manager.index()]
        return [r for r in rows if r.state == "READY"] if ready_only else rows

    def _require_control(self) -> None:
        if not self._limits.model_control:
            raise PermissionDenied(
                "repository control is disabled on this server (start it with "
                "--model-control on, or enable auth)"
            )

    async def load_model(self, name: str) -> None:
        """(Re)load ``name`` from disk now; raises if no version of it can serve."""
        self._require_control()
        await self._manager.sync(only=name, force=True)
        state = self._registry.models.get(name)
        if state is None:
            raise ModelNotFound(f"model {name!r} is not in the repository")
        if not state.ready:
            raise ModelNotReady(f"model {name!r} failed to load: {state.last_error}")
        if self._replicate is not None:
            await self._replicate("load", name)

    async def unload_model(self, name: str) -> None:
        """Unload every version of ``name``; the poller leaves it unloaded."""
        self._require_control()
        await self._manager.unload(name)
        if self._replicate is not None:
            await self._replicate("unload", name)

    async def change_policy(self, name: str, action: str, version: str = "") -> ServingPolicy:
        """Shadow / unshadow / promote / rollback ``name`` (serving/shadow/rollout.py): written
        to serving.json, applied here at once, and in every other worker before it answers."""
        self._require_control()
        policy = await self._manager.change_policy(name, action, version)
        if self._replicate is not None:
            await self._replicate("policy", name)
        return policy


def _shadow_tag(version: str, answer_id: str = "") -> str | None:
    """A request naming no version is shadowed (tag: the answer id to note the candidate's
    labels under, "" for none); one naming its version is not (None)."""
    return None if version else answer_id


def deadline_from_remaining(remaining: float | None) -> float | None:
    """Convert a transport's seconds-remaining into a monotonic deadline."""
    return None if remaining is None else time.monotonic() + remaining


def describe_input(spec: TensorSpec) -> str:
    """How the typed APIs describe a model's input to people."""
    return f"{spec.describe()} float32 in [0,1] (pixel/255), white digit on black"
