"""nginx configs rendered from one template, ``deploy/nginx/nginx.conf.template``.

The checked-in ``deploy/nginx/nginx.conf`` (docker compose) is the rendering of
:data:`COMPOSE`; the local cluster renders :func:`local` into its work directory. Both
share every proxy setting the failover behaviour depends on, because both come from the
same text. After changing the template or the defaults, regenerate the checked-in file::

    python -m deploy.nginx_conf > deploy/nginx/nginx.conf

Placeholders are ``{{ name }}`` (nginx's own ``$variables`` stay untouched). A placeholder
alone on its line takes a list of lines, each indented like it; an empty list drops the
line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from serving.settings import Settings

NGINX_DIR = Path(__file__).resolve().parent / "nginx"
TEMPLATE = NGINX_DIR / "nginx.conf.template"
CHECKED_IN = NGINX_DIR / "nginx.conf"
_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
_LINE_PLACEHOLDER = re.compile(r"^(\s*)\{\{ (\w+) \}\}\s*$")
_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def server_body_limit() -> str:
    """nginx's client_max_body_size equal to the server's default --max-message-bytes."""
    limit = Settings().max_message_bytes
    mib = 1024 * 1024
    return f"{limit // mib}m" if limit % mib == 0 else str(limit)


@dataclass(frozen=True)
class NginxConfig:
    """The values that differ between renderings."""

    header: str
    grpc_listen: str
    grpc_upstreams: tuple[str, ...]
    access_log: str
    # The HTTP/REST side: where nginx listens, the replicas' HTTP listeners, its access log.
    http_listen: str
    http_upstreams: tuple[str, ...]
    http_access_log: str
    worker_processes: str = "auto"
    worker_connections: int = 4096
    keepalive: int = 64
    connect_timeout: str = "2s"
    rpc_timeout: str = "300s"
    # Idle upstream HTTP connections are closed after this (below the servers' 30 s).
    http_keepalive_timeout: str = "20s"
    max_body_size: str = field(default_factory=server_body_limit)
    # Lines before `worker_processes` (foreground mode, pid and error log of a local run).
    process_directives: tuple[str, ...] = ()
    # Where nginx writes request bodies etc. (a local run keeps them in its work directory).
    temp_paths: tuple[str, ...] = field(default_factory=tuple)

    def values(self) -> dict[str, str | Sequence[str]]:
        """What each placeholder becomes."""
        values: dict[str, str | Sequence[str]] = {
            k: v if isinstance(v, tuple) else str(v) for k, v in asdict(self).items()
        }
        for kind in ("grpc", "http"):
            del values[f"{kind}_upstreams"]
            values[f"{kind}_upstream_servers"] = [
                f"server {u} max_fails=1 fail_timeout=10s;"
                for u in getattr(self, f"{kind}_upstreams")
            ]
        return values


# docker compose --profile scale: compose service names; nginx's ports in its container
# (gRPC 8000, HTTP 8080; docker-compose.yml publishes them as 9001 and 9000).
REPLICAS = ("server", "server-2", "server-3")
COMPOSE = NginxConfig(
    header="Rendered from deploy/nginx/nginx.conf.template by python -m deploy.nginx_conf: "
    "edit those.",
    grpc_listen="8000",
    grpc_upstreams=tuple(f"{r}:{Settings().grpc_port}" for r in REPLICAS),
    access_log="/dev/stdout",
    http_listen="8080",
    http_upstreams=tuple(f"{r}:{Settings().http_port}" for r in REPLICAS),
    http_access_log="/dev/stdout",
)


@dataclass(frozen=True)
class Side:
    """One protocol's side of a local proxy: the port nginx listens on and the replicas."""

    port: int
    upstreams: tuple[str, ...]


def local(workdir: Path, grpc: Side, http: Side, host: str = "127.0.0.1") -> NginxConfig:
    """A foreground, unprivileged gRPC + HTTP proxy on loopback, every file it writes in
    ``workdir``.

    Nothing goes to /var or /run, so several clusters can run side by side. Shorter
    timeouts than compose: a local run (and its tests) should fail fast.
    """
    return replace(
        COMPOSE,
        header="Rendered by deploy/local_cluster.py from deploy/nginx/nginx.conf.template.",
        grpc_listen=f"{host}:{grpc.port}",
        grpc_upstreams=grpc.upstreams,
        access_log=str(workdir / "nginx-access.log"),
        http_listen=f"{host}:{http.port}",
        http_upstreams=http.upstreams,
        http_access_log=str(workdir / "nginx-http-access.log"),
        worker_processes="1",
        worker_connections=1024,
        keepalive=32,
        connect_timeout="1s",
        rpc_timeout="60s",
        process_directives=(
            "daemon off;",
            "master_process on;",
            f"pid {workdir}/nginx.pid;",
            f"error_log {workdir}/nginx-error.log notice;",
        ),
        temp_paths=tuple(f"{kind}_temp_path {workdir / kind};" for kind in _TEMP_KINDS),
    )


def render(config: NginxConfig, template: str | None = None) -> str:
    """The template with ``config``'s values; raises KeyError for an unknown placeholder."""
    text = TEMPLATE.read_text() if template is None else template
    values = config.values()
    out: list[str] = []
    for line in text.splitlines():
        whole = _LINE_PLACEHOLDER.match(line)
        if whole is not None and not isinstance(values[whole.group(2)], str):
            out.extend(whole.group(1) + item for item in values[whole.group(2)])
            continue
        out.append(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), line))
    return "\n".join(out) + "\n"


def render_local(workdir: Path, grpc: Side, http: Side) -> str:
    """The local cluster's nginx.conf (see :func:`local`)."""
    return render(local(workdir, grpc, http))


if __name__ == "__main__":
    sys.stdout.write(render(COMPOSE))
