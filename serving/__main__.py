"""``digits-serve`` / ``python -m serving``: settings -> server -> run until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from serving import event_loop
from serving.logs import configure_logging
from serving.native_build import NativeUnavailable
from serving.runtime.providers import ProviderUnavailable
from serving.settings import Settings, load_settings

log = logging.getLogger("serving")


def ready_line(grpc_port: int, http_port: int, metrics_port: int) -> str:
    """``digits-serve ready grpc=8001 http=8000 metrics=8002 pid=123`` (-1 = not served)."""
    return (
        f"digits-serve ready grpc={grpc_port} http={http_port} metrics={metrics_port} "
        f"pid={os.getpid()}"
    )


async def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then drain within the grace period."""
    from serving.app import ServerApp

    app = ServerApp(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    # One machine-readable line (key=value, -1 = off) that launchers wait for and parse.
    print(ready_line(app.port, app.http_port, app.metrics_port), flush=True)
    await stop.wait()
    log.info("signal received; stopping")
    await app.stop()


def _worker_control_fd(argv: list[str]) -> int | None:
    """Remove the supervisor's hidden ``--worker-control-fd N`` from ``argv``; N or None."""
    from serving.supervisor import WORKER_FLAG

    if WORKER_FLAG not in argv:
        return None
    at = argv.index(WORKER_FLAG)
    fd = int(argv[at + 1])
    del argv[at : at + 2]
    return fd


def _announce(ports: dict[str, int], metrics_port: int) -> None:
    print(
        ready_line(ports.get("grpc_port", -1), ports.get("http_port", -1), metrics_port),
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    control_fd = _worker_control_fd(args)
    try:
        settings = load_settings(args)
        # Read the token file now: an empty or unreadable one is a usage error, not a crash.
        settings.resolved_auth_token()
        workers = settings.worker_count
    except ValueError as exc:
        print(f"digits-serve: {exc}", file=sys.stderr)
        return 2
    # The supervisor and its workers share stderr: their text lines say whose they are.
    configure_logging(
        settings.log_level, settings.log_format, show_pid=control_fd is not None or workers > 1
    )
    try:
        if settings.grpc_frontend == "native" and control_fd is None:
            from serving.grpc.native import prepare

            prepare()  # one build before any worker starts, and its failure said once
        if control_fd is not None:
            from serving.worker import serve_worker

            event_loop.run(serve_worker(settings, control_fd), settings.event_loop)
        elif workers > 1:
            from serving.supervisor import run_supervisor

            return run_supervisor(settings, workers, _announce)
        else:
            event_loop.run(serve(settings), settings.event_loop)
    except (ProviderUnavailable, event_loop.EventLoopUnavailable, NativeUnavailable) as exc:
        log.error("%s", exc)
        return 3
    except OSError as exc:
        # strerror alone: the message names the port and what to do, "[Errno 98]" adds nothing.
        log.error("cannot start: %s", exc.strerror or exc)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
