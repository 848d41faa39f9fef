"""The one inference core both gRPC APIs call: readiness, metadata, checked inference."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from serving.errors import InvalidInput, ModelNotReady
from serving.registry import LoadedVersion, ModelRegistry
from serving.types import InferResult

PIXELS = 28 * 28


class DataPlane:
    """Validates inputs against a model's signature and sends them to its batcher."""

    def __init__(self, registry: ModelRegistry, max_images_per_request: int) -> None:
        self.registry = registry
        self.max_images = max_images_per_request
        self.draining = False
        self.started = False

    def live(self) -> bool:
        """The process is up and its event loop answers."""
        return True

    def ready(self) -> bool:
        """Initial load done, not draining, at least one model serving."""
        return self.started and not self.draining and bool(self.registry.ready_models())

    def model_ready(self, name: str, version: str = "") -> bool:
        """Whether ``name`` (and ``version``) can serve now; unknown models raise NotFound."""
        try:
            self.resolve(name, version)
        except ModelNotReady:
            return False
        return True

    def resolve(self, name: str, version: str = "") -> LoadedVersion:
        """The loaded version a request goes to (raises NotFound / NotReady)."""
        if self.draining:
            raise ModelNotReady("server is shutting down; retry on another replica")
        return self.registry.resolve(name, version)

    def check_images(
        self, target: LoadedVersion, images: np.ndarray, input_name: str = ""
    ) -> np.ndarray:
        """Return ``images`` as the model's input tensor, or raise InvalidInput saying why."""
        spec = target.manifest.input
        if input_name and input_name != spec.name:
            raise InvalidInput(
                f"model {target.name!r} has no input {input_name!r}; it takes {spec.describe()}"
            )
        expected = f"{spec.datatype}[-1,28,28] (or [-1,784]), -1 = batch of 1..{self.max_images}"
        if images.dtype != np.float32:
            raise InvalidInput(
                f"input {spec.name!r}: expected {expected}, got datatype {images.dtype.name}"
            )
        shape = images.shape
        if not (
            (len(shape) == 3 and shape[1:] == (28, 28)) or (len(shape) == 2 and shape[1] == PIXELS)
        ):
            raise InvalidInput(
                f"input {spec.name!r}: expected shape {expected}, got {spec.datatype}{list(shape)}"
            )
        count = shape[0]
        if count == 0:
            raise InvalidInput(f"input {spec.name!r}: empty batch (shape {list(shape)})")
        if count > self.max_images:
            raise InvalidInput(
                f"input {spec.name!r}: {count} images in one request; the limit is "
                f"{self.max_images} (split the request)"
            )
        if not np.isfinite(images).all():
            raise InvalidInput(f"input {spec.name!r}: contains NaN or Inf values")
        return images.reshape(count, 28, 28)

    async def infer(
        self,
        name: str,
        version: str,
        images: np.ndarray,
        deadline: float | None = None,
        input_name: str = "",
        outputs: Sequence[str] = (),
    ) -> InferResult:
        """Classify ``images`` with one model version through its batcher.

        ``deadline`` is a time.monotonic() value; requests still queued then
        are dropped with DeadlineExceeded and never computed.
        """
        target = self.resolve(name, version)
        batch = self.check_images(target, images, input_name)
        output_name = target.manifest.output.name
        for requested in outputs:
            if requested != output_name:
                raise InvalidInput(
                    f"model {target.name!r} has no output {requested!r}; it has {output_name!r}"
                )
        rows = await target.batcher.submit(batch, deadline)
        return InferResult(
            rows, target.name, target.version, target.model.provider, target.manifest
        )


def deadline_from_remaining(remaining: float | None) -> float | None:
    """Convert gRPC's seconds-remaining into a monotonic deadline."""
    return None if remaining is None else time.monotonic() + remaining
