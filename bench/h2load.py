"""h2load as a native gRPC load generator: one pre-serialised request, real answers counted.

h2load (Debian's ``nghttp2-client``) sends the same HTTP/2 body again and again and costs the
machine far less CPU than a Python client. A gRPC unary call is a POST whose body is one
frame: a 0 byte (not compressed), the message length as 4 bytes big-endian, the message.

h2load counts every HTTP 200 as a success, but a gRPC error is an HTTP 200 too (the status
travels in the trailers; grpcio sends an empty 5-byte frame with it). So the answers are
counted from the response data bytes: every real answer carries one frame of a known size.

    python -m bench.h2load --port 8001 --model cnn -n 20000 -c 4 -m 16 [--batch 64]
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

MODEL_INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
# grpcio answers an error status with one empty message frame (measured: 5 data bytes each).
EMPTY_FRAME_BYTES = 5


def grpc_frame(message: bytes) -> bytes:
    """``message`` as one uncompressed gRPC length-prefixed frame."""
    return struct.pack(">BI", 0, len(message)) + message


@dataclass(frozen=True)
class H2loadResult:
    """What one h2load run reported."""

    seconds: float
    requests_per_s: float
    total: int
    succeeded: int
    failed: int
    errored: int
    status_2xx: int
    data_bytes: int
    mean_ms: float

    def answers(self, answer_frame_bytes: int, error_frame_bytes: int = EMPTY_FRAME_BYTES) -> int:
        """Responses that carried a real answer, from the data bytes: every answer is one
        frame of ``answer_frame_bytes``, every error one of ``error_frame_bytes``.

        Raises ValueError when the bytes do not split that way (other answers or errors).
        """
        n = self.succeeded
        answers, rest = divmod(
            self.data_bytes - n * error_frame_bytes, answer_frame_bytes - error_frame_bytes
        )
        if rest or not 0 <= answers <= n:
            raise ValueError(
                f"{self.data_bytes} data bytes are not {n} frames of {answer_frame_bytes} "
                f"(answer) or {error_frame_bytes} (error) bytes"
            )
        return answers


_FINISHED = re.compile(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx")
_TRAFFIC = re.compile(r"traffic: .*?, [\d.]+\w*B \((\d+)\) data")
_REQUEST_TIME = re.compile(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)")
_TO_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse(output: str) -> H2loadResult:
    """Parse h2load's summary; raises ValueError when a line is missing (e.g. it failed)."""

    def find(pattern: re.Pattern[str]) -> re.Match[str]:
        match = pattern.search(output)
        if match is None:
            raise ValueError(f"h2load output has no match for {pattern.pattern!r}:\n{output}")
        return match

    finished, requests = find(_FINISHED), find(_REQUESTS)
    request_time = find(_REQUEST_TIME)
    seconds = float(finished[1]) / (1000 if finished[2] == "ms" else 1)
    return H2loadResult(
        seconds=seconds,
        requests_per_s=float(finished[3]),
        total=int(requests[1]),
        succeeded=int(requests[2]),
        failed=int(requests[3]),
        errored=int(requests[4]),
        status_2xx=int(find(_STATUS)[1]),
        data_bytes=int(find(_TRAFFIC)[1]),
        mean_ms=float(request_time[1]) * _TO_MS[request_time[2]],
    )


def h2load_binary() -> str | None:
    """The h2load executable, if installed (scripts/setup.sh --system installs it)."""
    return shutil.which("h2load")


def execute(options: Sequence[str], body: bytes, url: str, timeout_s: float = 600) -> str:
    """Run h2load with ``options``, POSTing ``body`` to ``url`` each time; its summary text.

    Raises RuntimeError when h2load is missing or exits non-zero.
    """
    binary = h2load_binary()
    if binary is None:
        raise RuntimeError("h2load is not installed (Debian nghttp2-client)")
    with tempfile.NamedTemporaryFile(suffix=".body") as data:
        data.write(body)
        data.flush()
        command = [binary, *options, "-d", data.name, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"h2load exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def run(
    url: str,
    frame: bytes,
    requests: int,
    clients: int,
    streams: int,
    threads: int = 1,
    timeout_s: float = 600,
    seconds: float = 0.0,
) -> H2loadResult:
    """POST ``frame`` to ``url`` ``requests`` times (or, with ``seconds``, for that long) over
    ``clients`` connections with ``streams`` calls in flight on each."""
    headers = [arg for header in GRPC_HEADERS for arg in ("-H", header)]
    amount = amount_options(requests, seconds)
    options = [*amount, "-c", str(clients), "-m", str(streams), "-t", str(threads)]
    return parse(execute([*options, *headers], frame, url, timeout_s + seconds))


def amount_options(requests: int, seconds: float) -> list[str]:
    """``-n requests``, or ``-D <seconds>`` when ``requests`` is 0 (h2load takes ``<n>ms``)."""
    if requests:
        return ["-n", str(requests)]
    return ["-D", f"{max(1, round(seconds * 1000))}ms"]


def model_infer_frames(model: str, host: str, port: int, batch: int = 1) -> tuple[bytes, int]:
    """The request frame for one ModelInfer of ``batch`` images, and the size of its answer's
    frame (from one real call through the Python client)."""
    import grpc
    import numpy as np

    from serving.api import open_inference_pb2 as pb
    from serving.api import open_inference_pb2_grpc

    images = np.random.default_rng(0).random((batch, 28, 28), dtype=np.float32)
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="images", datatype="FP32", shape=[batch, 28, 28])
    request.raw_input_contents.append(images.tobytes())
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        answer = stub.ModelInfer(request, timeout=30)
    return grpc_frame(request.SerializeToString()), len(grpc_frame(answer.SerializeToString()))


def main(argv: Sequence[str] | None = None) -> int:
    """Drive V2 ModelInfer on a running server and print req/s and checked answers."""
    parser = argparse.ArgumentParser(prog="python -m bench.h2load", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("-c", "--clients", type=int, default=4)
    parser.add_argument("-m", "--streams", type=int, default=16)
    parser.add_argument("-t", "--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="images per request")
    args = parser.parse_args(argv)
    frame, answer_bytes = model_infer_frames(args.model, args.host, args.port, args.batch)
    url = f"http://{args.host}:{args.port}{MODEL_INFER_PATH}"
    result = run(url, frame, args.requests, args.clients, args.streams, args.threads)
    answers = result.answers(answer_bytes)
    print(
        f"{args.model} batch {args.batch}, {args.clients * args.streams} in flight "
        f"({args.clients} conns x {args.streams} streams): {result.requests_per_s:,.0f} req/s "
        f"({answers * args.batch / result.seconds:,.0f} images/s), "
        f"mean {result.mean_ms:.2f} ms, {answers}/{result.total} real answers "
        f"({result.succeeded} HTTP 2xx)"
    )
    return 0 if answers == result.total else 1


if __name__ == "__main__":
    sys.exit(main())
