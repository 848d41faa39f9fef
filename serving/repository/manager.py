"""Keeps the registry in step with the repository on disk, without ever going dark.

A new version is loaded and checked in a worker thread, then swapped in with
one assignment; the versions it replaces drain their queues before closing.
A version that fails its checks is logged, counted and remembered (by its
file stamp) so it is not retried until its files change; the versions already
serving stay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from serving.batching.batcher import Batcher, BatchLimits, FanOut
from serving.batching.compute import ComputePool
from serving.errors import Conflict, ModelLoadError, ModelNotFound
from serving.metrics import Metrics
from serving.model_format import ModelManifest
from serving.registry import LoadedVersion, ModelRegistry, ModelState, Selection
from serving.repository.layout import VersionDir, scan
from serving.repository.policy import PolicyError, ServingPolicy, read_policy, write_policy
from serving.repository.selection import PolicyKeeper, roles_of
from serving.runtime.onnx import OnnxModel, RuntimeConfig
from serving.shadow.rollout import check_applied, plan
from serving.shadow.runner import Shadowing
from serving.statistics import VersionStats

log = logging.getLogger(__name__)

StateListener = Callable[[], None]


class RepositoryManager:
    """Loads, swaps and unloads model versions found under ``root``."""

    def __init__(
        self,
        root: Path,
        registry: ModelRegistry,
        runtime: RuntimeConfig,
        limits: BatchLimits,
        metrics: Metrics,
        compute: ComputePool,
        load_executor: Executor,
        max_versions: int = 2,
        on_change: StateListener | None = None,
        shadowing: Shadowing | None = None,
        shadow_overrides: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.registry = registry
        self.runtime = runtime
        self.limits = limits
        self.metrics = metrics
        self._compute = compute
        self._load_executor = load_executor
        self.max_versions = max_versions
        self._on_change = on_change or (lambda: None)
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()
        # serving.json as applied (pin, shadow, previous) and the --shadow overrides.
        self.policies = PolicyKeeper(root, shadow_overrides or {}, shadowing)

    async def sync(self, only: str | None = None, force: bool = False) -> None:
        """Bring loaded versions in line with disk (all models, or just ``only``).

        ``force`` also reloads a model that was explicitly unloaded.
        """
        async with self._lock:
            await self._sync_locked(only, force)

    async def _sync_locked(self, only: str | None = None, force: bool = False) -> None:
        on_disk = await asyncio.to_thread(scan, self.root)
        if only is not None and only not in on_disk:
            raise ModelNotFound(f"model {only!r} is not in the repository {self.root}")
        names = [only] if only is not None else sorted(on_disk)
        for name in names:
            state = self.registry.state(name)
            if state.unloaded and not force:
                continue
            state.unloaded = False
            await self._sync_model(state, on_disk[name])
        for name, state in self.registry.models.items():
            if only is None and name not in on_disk and state.versions:
                # The whole model directory vanished: keep serving what is
                # loaded (nothing is lost), but say so.
                state.last_error = f"{self.root / name} is gone from disk; serving loaded copy"

    async def _sync_model(self, state: ModelState, disk: list[VersionDir]) -> None:
        policy = await self.policies.read(state)
        pinned = policy.pinned()
        loaded = {v.version: v for v in state.versions}
        wanted: list[LoadedVersion] = []
        newest = 0  # good versions among the newest max_versions; pinned ones come on top
        for source in reversed(disk):  # newest first
            if newest >= self.max_versions and source.version not in pinned:
                continue
            newest += 1
            current = loaded.get(source.version)
            if current is not None and current.source.stamp == source.stamp:
                wanted.append(current)
                continue
            if state.failed.get(source.version) == source.stamp:
                newest -= 1
                continue
            if current is None and not state.versions:
                state.loading = True
                self._on_change()
            try:
                fresh = await self._load(source)
            except ModelLoadError as exc:
                state.failed[source.version] = source.stamp
                state.last_error = f"version {source.version}: {exc}"
                self.metrics.load_failures.labels(source.model, source.version).inc()
                log.error("refused %s version %s: %s", source.model, source.version, exc)
                if current is not None:
                    wanted.append(current)  # its files changed badly; keep the good copy
                else:
                    newest -= 1
                continue
            finally:
                state.loading = False
            state.failed.pop(source.version, None)
            wanted.append(fresh)
        wanted.sort(key=lambda v: int(v.version), reverse=True)
        if not wanted:
            # Every version on disk is missing or broken: keep serving whatever
            # is loaded rather than go dark.
            self._on_change()
            return
        self._swap(state, tuple(wanted), policy)

    def _swap(
        self, state: ModelState, new: tuple[LoadedVersion, ...], policy: ServingPolicy
    ) -> None:
        old = state.versions
        state.versions = new
        # Same event-loop step as the versions: no request sees one without the other.
        self.policies.select(state, policy)
        for gone in old:
            if gone not in new:
                self._retire(gone)
        added = [v.version for v in new if v not in old]
        if added or len(old) != len(new):
            log.info(
                "serving %s versions %s (latest %s, provider %s)",
                state.name,
                state.version_names(),
                new[0].version,
                new[0].model.provider,
            )
        self._on_change()

    async def change_policy(self, name: str, action: str, version: str = "") -> ServingPolicy:
        """Apply a shadow / unshadow / promote / rollback (serving/shadow/rollout.py) here:
        write serving.json, load what it names, and put the old file back if that failed."""
        async with self._lock:
            on_disk = await asyncio.to_thread(scan, self.root)
            state = self.registry.models.get(name)
            if name not in on_disk or state is None:
                raise ModelNotFound(f"model {name!r} is not in the repository {self.root}")
            if state.unloaded:
                raise Conflict(f"model {name!r} is unloaded; load it first")
            model_dir = self.root / name
            try:
                before: ServingPolicy | None = await asyncio.to_thread(read_policy, model_dir)
            except PolicyError:
                before = None  # malformed: a change replaces it
            current = await self.policies.read(state)
            answering = state.answering
            wanted = plan(
                action,
                name,
                current,
                answering.version if answering is not None else None,
                {v.version for v in on_disk[name]},
                version,
            )
            await asyncio.to_thread(write_policy, model_dir, wanted)
            self.policies.forget_override(name)
            await self._sync_locked(only=name)
            selection = state.selection
            try:
                check_applied(
                    action,
                    name,
                    wanted,
                    selection.served.version if selection.served is not None else None,
                    selection.shadow.version if selection.shadow is not None else None,
                    state.policy_note,
                )
            except Conflict:
                await asyncio.to_thread(write_policy, model_dir, before or ServingPolicy())
                await self._sync_locked(only=name)
                raise
            log.info("%s: %s %s -> serving.json %s", name, action, version, wanted.to_json())
            return wanted

    def _retire(self, version: LoadedVersion) -> None:
        log.info("unloading %s version %s", version.name, version.version)

        async def drain() -> None:
            await version.batcher.close()
            version.metrics.unloaded()

        task = asyncio.get_running_loop().create_task(drain())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _load(self, source: VersionDir) -> LoadedVersion:
        log.info("loading %s version %s from %s", source.model, source.version, source.path)

        def load_blocking() -> OnnxModel:
            manifest = ModelManifest.read(source.manifest_path)
            if manifest.name != source.model:
                raise ModelLoadError(
                    f"model.json names {manifest.name!r} but sits in {source.model!r}"
                )
            return OnnxModel.load(source.onnx_path, manifest, self.runtime)

        model = await asyncio.get_running_loop().run_in_executor(self._load_executor, load_blocking)
        observer = self.metrics.for_version(source.model, source.version)
        stats = VersionStats(source.model, source.version)
        self._compute.ensure(model.concurrent_batches)
        batcher = Batcher(
            model.run,
            self.limits,
            self._compute,
            name=f"{source.model}/{source.version}",
            observer=FanOut(observer, stats),
            instances=model.concurrent_batches,
        )
        batcher.start()
        observer.loaded(model.provider, model.device)
        return LoadedVersion(model, batcher, observer, source, stats)

    async def unload(self, name: str) -> None:
        """Unload every version of ``name`` on request; the poller leaves it unloaded."""
        async with self._lock:
            state = self.registry.models.get(name)
            if state is None:
                raise ModelNotFound(f"model {name!r} is not loaded")
            state.unloaded = True
            old, state.versions = state.versions, ()
            state.selection = Selection()
            for version in old:
                self._retire(version)
            self._on_change()

    async def index(self) -> list[tuple[str, str, str, str]]:
        """(model, version, state, reason) for every version on disk or loaded."""
        on_disk = await asyncio.to_thread(scan, self.root)
        rows: list[tuple[str, str, str, str]] = []
        for name in sorted(set(on_disk) | set(self.registry.models)):
            state = self.registry.models.get(name) or ModelState(name)
            loaded = set(state.version_names())
            versions = {v.version for v in on_disk.get(name, [])} | loaded
            roles = roles_of(state)
            note = f" ({state.policy_note})" if state.policy_note else ""
            for version in sorted(versions, key=int):
                if version in loaded:
                    rows.append((name, version, "READY", roles.get(version, "") + note))
                elif state.loading:
                    rows.append((name, version, "LOADING", ""))
                elif version in state.failed:
                    rows.append((name, version, "UNAVAILABLE", state.last_error))
                elif state.unloaded:
                    rows.append((name, version, "UNAVAILABLE", "unloaded by request"))
                else:
                    rows.append(
                        (
                            name,
                            version,
                            "UNAVAILABLE",
                            f"not among the newest {self.max_versions} good versions",
                        )
                    )
        return rows

    async def poll_forever(self, interval: float) -> None:
        """Re-scan every ``interval`` seconds until cancelled; errors never stop it."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except Exception:
                log.exception("repository poll failed; will retry")

    async def close(self) -> None:
        """Drain and close every loaded version."""
        async with self._lock:
            for state in self.registry.models.values():
                old, state.versions = state.versions, ()
                for version in old:
                    self._retire(version)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
