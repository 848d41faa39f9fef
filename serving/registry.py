"""Model name -> loaded versions. Swaps are one assignment on the event loop thread."""

from __future__ import annotations

from dataclasses import dataclass, field

from serving.batching.batcher import Batcher
from serving.errors import ModelNotFound, ModelNotReady
from serving.metrics import VersionMetrics
from serving.model_format import ModelManifest
from serving.repository.layout import VersionDir
from serving.runtime.onnx import OnnxModel
from serving.statistics import VersionStats


@dataclass(eq=False)
class LoadedVersion:
    """A model version that passed its checks, with its own batching queue."""

    model: OnnxModel
    batcher: Batcher
    metrics: VersionMetrics
    source: VersionDir
    # Triton's statistics extension for this version, cumulative since load.
    stats: VersionStats

    @property
    def manifest(self) -> ModelManifest:
        """The version's model.json."""
        return self.model.manifest

    @property
    def name(self) -> str:
        """Model name."""
        return self.source.model

    @property
    def version(self) -> str:
        """Version string."""
        return self.source.version


@dataclass(frozen=True, slots=True)
class Selection:
    """Which loaded versions answer and shadow (from serving.json); replaced wholesale."""

    # None: the newest loaded version answers requests that name no version.
    served: LoadedVersion | None = None
    # Computes beside the answering version; never answers (serving/shadow/).
    shadow: LoadedVersion | None = None
    # The version a promotion replaced, kept loaded for rollback.
    previous: str | None = None


@dataclass
class ModelState:
    """Everything the server knows about one model name."""

    name: str
    # Newest first; replaced wholesale, never mutated, so readers need no lock.
    versions: tuple[LoadedVersion, ...] = ()
    loading: bool = False
    last_error: str = ""
    # Set by an explicit unload; the poller leaves such a model alone.
    unloaded: bool = False
    failed: dict[str, tuple] = field(default_factory=dict)
    selection: Selection = field(default_factory=Selection)
    # Why serving.json is not (fully) in effect: malformed, or naming a version not loaded.
    policy_note: str = ""

    @property
    def ready(self) -> bool:
        """True when at least one version can serve."""
        return bool(self.versions)

    def version_names(self) -> list[str]:
        """Loaded versions, newest first."""
        return [v.version for v in self.versions]

    @property
    def answering(self) -> LoadedVersion | None:
        """The version that answers requests naming no version: the pinned one, else the
        newest loaded."""
        return self.selection.served or (self.versions[0] if self.versions else None)


class ModelRegistry:
    """The server's view of its models; every mutation happens on the event loop."""

    def __init__(self) -> None:
        self.models: dict[str, ModelState] = {}

    def state(self, name: str) -> ModelState:
        """The state for ``name``, created empty if new."""
        state = self.models.get(name)
        if state is None:
            state = self.models[name] = ModelState(name)
        return state

    def resolve(self, name: str, version: str = "") -> LoadedVersion:
        """The version to serve: the answering one (pinned, else latest) when ``version`` is
        empty."""
        state = self.models.get(name)
        if state is None:
            known = sorted(self.models)
            raise ModelNotFound(f"model {name!r} not found; this server has {known}")
        versions = state.versions
        if not version:
            answering = state.answering
            if answering is not None:
                return answering
            if state.loading:
                raise ModelNotReady(f"model {name!r} is still loading; retry shortly")
            reason = f" (last error: {state.last_error})" if state.last_error else ""
            raise ModelNotReady(f"model {name!r} has no working version loaded{reason}")
        for loaded in versions:
            if loaded.version == version:
                return loaded
        if state.loading:
            raise ModelNotReady(f"model {name!r} is loading; version {version} not ready yet")
        raise ModelNotFound(
            f"model {name!r} has no version {version!r} loaded; loaded versions: "
            f"{state.version_names()}"
        )

    def ready_models(self) -> list[str]:
        """Names with at least one loaded version."""
        return [name for name, state in self.models.items() if state.ready]
