"""Run a real ServerApp on its own event loop thread, bound to loopback port 0."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from serving.app import ServerApp
from serving.settings import Settings


class ServerThread:
    """A live server for tests; clients talk to it over real gRPC on 127.0.0.1."""

    def __init__(self, settings: Settings, **app_kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.app: ServerApp = self.call(self._make(settings, app_kwargs))

    @staticmethod
    async def _make(settings: Settings, kwargs: dict) -> ServerApp:
        return ServerApp(settings, **kwargs)

    def call(self, coro: Coroutine, timeout: float = 60) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> ServerThread:
        """Start the server (loads the repository)."""
        self.call(self.app.start())
        return self

    @property
    def address(self) -> str:
        """host:port for clients."""
        return f"127.0.0.1:{self.app.port}"

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the server's HTTP transport."""
        return f"http://127.0.0.1:{self.app.http_port}"

    def stop(self, grace: float = 1.0) -> None:
        """Drain, stop and end the loop thread."""
        try:
            self.call(self.app.stop(grace))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


def _feedback_dir(repo: Path) -> Path:
    """Where a test server keeps feedback: beside a temporary repository, else (the shipped
    one) in a new temporary folder; never the user's state directory or the checkout."""
    parent = repo.resolve().parent
    if parent.is_relative_to(Path(tempfile.gettempdir()).resolve()):
        return parent
    folder = Path(tempfile.mkdtemp(prefix="digits-feedback-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def loopback_settings(repo: Path, **changes: Any) -> Settings:
    """Settings for a test server on 127.0.0.1, port 0, no metrics port, no polling."""
    base = Settings(
        model_repository=repo,
        grpc_host="127.0.0.1",
        grpc_port=0,
        http_host="127.0.0.1",
        http_port=0,
        metrics_host="127.0.0.1",
        metrics_port=-1,
        repository_poll_seconds=0,
        grace_seconds=1,
        feedback_db=f"sqlite:///{_feedback_dir(repo) / 'feedback.db'}",
    )
    if not (repo / base.default_model).is_dir():
        # The tests' tiny repositories have no robust model; their cnn is the default there.
        base = base.replace(default_model="cnn")
    return base.replace(**changes)
