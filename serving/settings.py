"""All server settings in one typed object, read from CLI flags and DIGITS_* env vars.

Flag names follow Triton's where Triton has one (``--model-repository``,
``--grpc-port``, ``--metrics-port``), so operators feel at home. Precedence:
command line > environment > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from serving import __version__
from serving.event_loop import EVENT_LOOPS
from serving.runtime.providers import cpu_budget
from serving.shadow.rollout import parse_overrides

ENV_PREFIX = "DIGITS_"
# Triton's flag names, accepted beside ours: Triton users type them from habit.
TRITON_ALIASES = {
    "--repository-poll-secs": "repository_poll_seconds",
    "--exit-timeout-secs": "grace_seconds",
}
# Triton's --model-control-mode, in our settings. Triton's "none" and "explicit" never
# poll the repository and "poll" never takes load/unload RPCs; the same here.
MODEL_CONTROL_MODES: dict[str, dict[str, Any]] = {
    "none": {"model_control": "off", "repository_poll_seconds": 0.0},
    "explicit": {"model_control": "on", "repository_poll_seconds": 0.0},
    "poll": {"model_control": "off"},
}


PACKAGE_DIR = Path(__file__).resolve().parent
# A regular install carries the shipped models in serving/_models (setup.py copies
# model_repository/ there at build time).
PACKAGED_MODELS = "_models"


def default_repository(package_dir: Path = PACKAGE_DIR) -> Path:
    """The shipped models: the checkout's model_repository/ when running from a checkout
    (or an editable install), else the copy packaged into the wheel.

    Raises ValueError naming ``--model-repository`` when neither exists.
    """
    checkout = package_dir.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "model_repository").is_dir():
        return checkout / "model_repository"
    packaged = package_dir / PACKAGED_MODELS
    if packaged.is_dir():
        return packaged
    raise ValueError(
        f"no shipped model repository (neither {checkout / 'model_repository'} nor "
        f"{packaged}); pass --model-repository DIR (or set DIGITS_MODEL_REPOSITORY)"
    )


def _opt(help_: str, lo: float | None = None, hi: float | None = None, **extra: Any) -> Any:
    """Field metadata: help text and inclusive bounds checked at load time."""
    return {"help": help_, "lo": lo, "hi": hi, **extra}


@dataclass(frozen=True)
class Settings:
    """Every knob of the server. Build with :func:`load_settings` or directly in tests."""

    model_repository: Path = field(
        default_factory=default_repository,
        metadata=_opt("model repository root: <name>/<version>/model.onnx + model.json"),
    )
    grpc_host: str = field(default="0.0.0.0", metadata=_opt("gRPC bind address"))
    grpc_port: int = field(default=8001, metadata=_opt("gRPC port (0 = pick a free one)", 0, 65535))
    http_host: str = field(default="0.0.0.0", metadata=_opt("HTTP/REST bind address"))
    http_port: int = field(
        default=8000,
        metadata=_opt(
            "HTTP/REST port: KServe V2 REST, /v1 and the page (0 = free, -1 = off)", -1, 65535
        ),
    )
    metrics_host: str = field(
        default="0.0.0.0", metadata=_opt("metrics bind address (e.g. an internal interface)")
    )
    metrics_port: int = field(
        default=8002,
        metadata=_opt("Prometheus metrics HTTP port (0 = free port, -1 = off)", -1, 65535),
    )
    default_model: str = field(
        default="robust", metadata=_opt("model used by the typed API when a request names none")
    )
    provider: str = field(
        default="auto",
        metadata=_opt(
            "execution provider: auto (CUDA if usable, else CPU), cpu or cuda",
            choices=("auto", "cpu", "cuda"),
        ),
    )
    cuda_device_id: int = field(default=0, metadata=_opt("CUDA device id", 0, 64))
    intra_op_threads: int = field(
        default=0,
        metadata=_opt("onnxruntime intra-op threads per session (0 = CPU budget)", 0, 256),
    )
    parallel_min_batch: int = field(
        default=32,
        metadata=_opt(
            "batches of at least this many images use every intra-op thread; smaller ones run "
            "on a one-thread copy of the session, where extra threads cost more CPU than they "
            "save (CPU provider only; 0 = always every thread)",
            0,
            1_000_000,
        ),
    )
    graph_optimization: str = field(
        default="all",
        metadata=_opt(
            "onnxruntime graph optimisation level", choices=("disabled", "basic", "extended", "all")
        ),
    )
    max_batch_size: int = field(
        default=64, metadata=_opt("images per batch before it is cut", 1, 65536)
    )
    # 0 (Triton's default too): an idle model starts at once, and under load the
    # next batch fills while the current one computes. A delay only pays when
    # compute is cheap next to request gaps; asyncio rounds waits up to 1 ms.
    max_queue_delay_us: int = field(
        default=0,
        metadata=_opt(
            "longest wait, from a batch's first request, before a batch is cut", 0, 10_000_000
        ),
    )
    max_queue_images: int = field(
        default=4096,
        metadata=_opt(
            "images queued per model before new requests get RESOURCE_EXHAUSTED", 1, 10_000_000
        ),
    )
    max_images_per_request: int = field(
        default=1024, metadata=_opt("images one request may carry", 1, 1_000_000)
    )
    max_inline_compute_us: int = field(
        default=1000,
        metadata=_opt(
            "run a request that finds its model idle on the event loop when the model's recent "
            "compute time is below this (skips the compute-thread hand-off; 0 = never)",
            0,
            100_000,
        ),
    )
    max_image_pixels: int = field(
        default=40_000_000,
        metadata=_opt("largest encoded image (width x height) the typed APIs decode", 1, 10**9),
    )
    max_concurrent_decodes: int = field(
        default=2,
        metadata=_opt(
            "PNG/JPEG decodes at once, server-wide (each holds one full-size image in memory)",
            1,
            64,
        ),
    )
    max_concurrent_batches: int = field(
        default=1,
        metadata=_opt(
            "compute threads, server-wide: batches computed at once across models (raised to "
            "the largest instance count, so every instance can compute)",
            1,
            64,
        ),
    )
    max_versions: int = field(default=2, metadata=_opt("versions kept loaded per model", 1, 100))
    repository_poll_seconds: float = field(
        default=5.0,
        metadata=_opt("poll the repository for new versions every N s (0 = never)", 0, 86400),
    )
    model_control: str = field(
        default="auto",
        metadata=_opt(
            "V2 repository load/unload RPCs: on, off, or auto (on only with auth)",
            choices=("auto", "on", "off"),
        ),
    )
    max_message_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_opt(
            "largest gRPC message received or sent, and largest HTTP request body", 1024, 2**31 - 1
        ),
    )
    max_stream_inflight: int = field(
        default=128, metadata=_opt("requests one stream may have in flight", 1, 100_000)
    )
    grace_seconds: float = field(
        default=10.0, metadata=_opt("drain time for in-flight requests on SIGTERM", 0, 3600)
    )
    keepalive_seconds: float = field(
        default=30.0, metadata=_opt("HTTP/2 keepalive ping interval", 1, 86400)
    )
    max_connection_age_seconds: float = field(
        default=300.0,
        metadata=_opt("close connections after N s so clients rebalance (0 = never)", 0, 86400),
    )
    tls_cert: Path | None = field(
        default=None, metadata=_opt("PEM server certificate (enables TLS)")
    )
    tls_key: Path | None = field(default=None, metadata=_opt("PEM private key for --tls-cert"))
    tls_client_ca: Path | None = field(
        default=None, metadata=_opt("PEM CA bundle; when set clients must present a cert (mTLS)")
    )
    auth_token_file: Path | None = field(
        default=None, metadata=_opt("file holding the bearer token required on inference RPCs")
    )
    auth_token: str | None = field(
        default=None,
        metadata=_opt("bearer token (prefer --auth-token-file or DIGITS_AUTH_TOKEN)", secret=True),
    )
    workers: str = field(
        default="1",
        metadata=_opt(
            "server processes sharing the ports: N, or auto (= the CPU budget); "
            "1 = one process, no supervisor"
        ),
    )
    grpc_frontend: str = field(
        default="python",
        metadata=_opt(
            "gRPC front end: python (grpc.aio, every method) or native (grpc++ in C++, unary "
            "methods only, plaintext only, several times the batch-1 calls/s; built on first "
            "use, needs g++ and libgrpc++-dev)",
            choices=("python", "native"),
        ),
    )
    event_loop: str = field(
        default="auto",
        metadata=_opt(
            "event loop: auto (uvloop when installed, else asyncio), uvloop or asyncio",
            choices=EVENT_LOOPS,
        ),
    )
    log_level: str = field(
        default="info", metadata=_opt("log level", choices=("debug", "info", "warning", "error"))
    )
    log_format: str = field(
        default="text",
        metadata=_opt(
            "log lines: text, or json (one object a line, with request id, model, version, "
            "status code and duration where known; debug level adds one line per request)",
            choices=("text", "json"),
        ),
    )
    max_explain_images: int = field(
        default=8,
        metadata=_opt(
            "images one explain=true request may carry (each runs ~70-170 occluded copies)",
            1,
            256,
        ),
    )
    feedback_db: str = field(
        default="",
        metadata=_opt(
            "feedback store URL: sqlite:///PATH (one file, WAL: safe for --workers) or "
            "postgresql://... (shared by replicas); empty = "
            "sqlite:///$XDG_STATE_HOME/digits-server/feedback.db "
            "($XDG_STATE_HOME defaults to ~/.local/state)",
        ),
    )
    feedback_keep_uploads: bool = field(
        default=False,
        metadata=_opt(
            "also store the original image file sent with feedback (off: only the "
            "prepared 28x28 input)"
        ),
    )
    feedback_answers: int = field(
        default=10_000,
        metadata=_opt(
            "recent typed answers (images) kept per process so feedback can name them by "
            "request id (0 = none: feedback then needs the image)",
            0,
            10_000_000,
        ),
    )
    feedback_answer_seconds: float = field(
        default=600.0,
        metadata=_opt("how long a typed answer is kept for feedback by request id", 1, 86400 * 7),
    )
    feedback_answer_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_opt(
            "memory the kept answers may hold per process (prepared inputs and outputs)",
            1024,
            2**40,
        ),
    )
    model_instances: int = field(
        default=1,
        metadata=_opt(
            "onnxruntime sessions (instances) per model version, each formed batch on a free "
            "one, like Triton's instance_group, the worker's CPU budget split between them; a "
            "model.json instance_group overrides it (1 measured best on 2 cores: "
            "docs/performance.md)",
            1,
            64,
        ),
    )
    overflow_session: bool = field(
        default=False,
        metadata=_opt(
            "a batch of at least --parallel-min-batch images that finds every instance busy "
            "computes at once on the one-thread copy of the session instead of waiting (both "
            "cores at batch 64 with one instance; CPU, more than one intra-op thread only); a "
            "model.json instance_group overflow overrides it"
        ),
    )
    shadow: str = field(
        default="",
        metadata=_opt(
            "MODEL:VERSION[,...]: run VERSION beside the served version of MODEL (shadow mode), "
            "in memory only, over serving.json's shadow until a repository call or the file "
            "changes it",
        ),
    )
    shadow_fraction: float = field(
        default=0.3,
        metadata=_opt(
            "share of the served version's batches the shadow candidate computes (besides "
            "dropping batches under load): bounds its mean cost (docs/design.md)",
            0,
            1,
        ),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
            value = getattr(self, f.name)
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise ValueError(f"{flag_name(f.name)}={value} is outside [{lo}, {hi}]")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ValueError(f"{flag_name(f.name)}={value!r}: expected one of {choices}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert/--tls-key")
        if self.grpc_frontend == "native" and self.tls_cert is not None:
            # grpc++ from Debian links the system's OpenSSL, and wheels in the same process
            # (grpcio, psycopg) bring their own TLS libraries: a TLS server crashed in the tests.
            raise ValueError(
                "--grpc-frontend native serves plaintext only: terminate TLS in front of it "
                "(nginx, docs/deploy.md) or use --grpc-frontend python with --tls-cert"
            )
        if self.workers != "auto" and not (
            self.workers.isdigit() and 1 <= int(self.workers) <= 256
        ):
            raise ValueError(f"--workers={self.workers!r}: expected a number 1..256 or auto")
        if self.feedback_db and not self.feedback_db.startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            raise ValueError(
                f"--feedback-db: expected sqlite:///PATH or postgresql://..., got "
                f"{self.feedback_db.split('://')[0]!r}"
            )
        parse_overrides(self.shadow)  # ValueError says what is wrong

    @property
    def worker_count(self) -> int:
        """Worker processes to run: ``auto`` is the CPU budget (affinity and cgroup quota)."""
        return cpu_budget() if self.workers == "auto" else int(self.workers)

    @property
    def max_queue_delay_s(self) -> float:
        """Batch delay in seconds."""
        return self.max_queue_delay_us / 1e6

    def resolved_auth_token(self) -> str | None:
        """The bearer token from --auth-token or --auth-token-file, stripped."""
        if self.auth_token:
            return self.auth_token.strip()
        if self.auth_token_file is not None:
            path = self.auth_token_file
            try:
                token = path.read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise ValueError(f"cannot read --auth-token-file {path}: {reason}") from None
            if not token:
                raise ValueError(f"--auth-token-file {path} is empty")
            return token
        return None

    @property
    def model_control_enabled(self) -> bool:
        """Load/unload RPCs are off by default unless requests are authenticated."""
        if self.model_control == "auto":
            return self.auth_token is not None or self.auth_token_file is not None
        return self.model_control == "on"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def settings_environ(settings: Settings) -> dict[str, str]:
    """Every field as its ``DIGITS_*`` variable: how the supervisor hands a worker its settings
    (the environment, unlike the command line, is private to the user running the server)."""
    return {
        env_name(f.name): "" if (value := getattr(settings, f.name)) is None else str(value)
        for f in fields(settings)
    }


def flag_name(attr: str) -> str:
    """``grpc_port`` -> ``--grpc-port``."""
    return "--" + attr.replace("_", "-")


def env_name(attr: str) -> str:
    """``grpc_port`` -> ``DIGITS_GRPC_PORT``."""
    return ENV_PREFIX + attr.upper()


def _field_type(f: dataclasses.Field) -> type:
    annotation = str(f.type)
    if "Path" in annotation:
        return Path
    for name, typ in (("int", int), ("float", float), ("bool", bool)):
        if annotation.startswith(name):
            return typ
    return str


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _convert(f: dataclasses.Field, raw: str) -> Any:
    typ = _field_type(f)
    if raw == "" and "None" in str(f.type):
        return None
    if typ is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{env_name(f.name)}={raw!r}: expected one of {_TRUE + _FALSE}")
        return raw.lower() in _TRUE
    try:
        return typ(raw)
    except ValueError:
        raise ValueError(f"{env_name(f.name)}={raw!r} is not a valid {typ.__name__}") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``digits-serve`` argument parser (one flag per settings field)."""
    parser = argparse.ArgumentParser(
        prog="digits-serve",
        description="Serve MNIST digit classifiers over gRPC: typed digits.v1 API and KServe V2.",
        epilog=f"Every flag can also be set with an environment variable: {ENV_PREFIX}<FLAG>, "
        "e.g. DIGITS_GRPC_PORT=9001.",
    )
    for f in fields(Settings):
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": f.metadata["help"]}
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        kwargs["type"] = _field_type(f)
        if kwargs["type"] is bool:  # --flag / --no-flag
            del kwargs["type"]
            kwargs["action"] = argparse.BooleanOptionalAction
        parser.add_argument(flag_name(f.name), **kwargs)
    aliases = parser.add_argument_group("Triton's names (aliases)")
    for alias, attr in TRITON_ALIASES.items():
        f = next(f for f in fields(Settings) if f.name == attr)
        aliases.add_argument(
            alias, dest=attr, type=_field_type(f), default=None, help=f"alias of {flag_name(attr)}"
        )
    aliases.add_argument(
        "--model-control-mode",
        choices=tuple(MODEL_CONTROL_MODES),
        default=None,
        help="Triton's mode: none = --model-control off and no polling; explicit = "
        "--model-control on and no polling; poll = --model-control off, polling every "
        "--repository-poll-seconds (must be > 0)",
    )
    parser.add_argument("--version", action="version", version=f"digits-serve {__version__}")
    return parser


def _apply_model_control_mode(mode: str, cli: dict[str, Any], values: dict[str, Any]) -> None:
    """Fill ``values`` from Triton's ``--model-control-mode`` (a flag: it beats the
    environment); refuse a flag given beside it that contradicts it."""
    for attr, value in MODEL_CONTROL_MODES[mode].items():
        if attr in cli and cli[attr] != value:
            raise ValueError(
                f"--model-control-mode={mode} means {flag_name(attr)}={value}, "
                f"but {flag_name(attr)}={cli[attr]} was given"
            )
        values[attr] = value
    if mode == "poll" and values.get("repository_poll_seconds") == 0:
        raise ValueError("--model-control-mode=poll needs --repository-poll-seconds > 0")


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from flags, then env vars, then defaults; raises ValueError on bad values."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    cli = {f.name: getattr(args, f.name) for f in fields(Settings)}
    cli = {name: value for name, value in cli.items() if value is not None}
    values = {
        f.name: _convert(f, environ[env_name(f.name)])
        for f in fields(Settings)
        if env_name(f.name) in environ
    }
    values.update(cli)
    if args.model_control_mode is not None:
        _apply_model_control_mode(args.model_control_mode, cli, values)
    return Settings(**values)
