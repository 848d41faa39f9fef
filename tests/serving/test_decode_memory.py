"""Huge but tiny-on-the-wire PNGs cost bounded memory and are still read right.

A 6000x6000 PNG of a drawn digit compresses to tens of KB; decoded naively it becomes
hundreds of MB of float32 temporaries. The server runs as its own process so its resident
memory can be read from /proc while 16 such images are classified at once. The figures are
printed (pytest -s) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import grpc
from PIL import Image, ImageDraw

from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from tests.helpers.aio_load import rss_mb
from tests.serving.test_main import start

SHIPPED = Path(__file__).resolve().parents[2] / "model_repository"
SIDE = 6000
CLIENTS = 16
PEAK_BOUND_MB = 600
SETTLED_BOUND_MB = 150


def huge_seven() -> bytes:
    """A 7 drawn with a thick pen on white 6000x6000 RGB paper, as a PNG."""
    image = Image.new("RGB", (SIDE, SIDE), "white")
    draw = ImageDraw.Draw(image)
    width = SIDE // 25
    draw.line([(1500, 1200), (4500, 1200), (2600, 4900)], fill="black", width=width, joint="curve")
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def test_sixteen_huge_pngs_at_once_stay_within_memory_bounds_and_read_right():
    png = huge_seven()
    with start(SHIPPED, "--repository-poll-seconds", "0") as proc:
        proc.wait_ready()
        address = proc.grpc_address
        idle = rss_mb(proc.pid)
        peak = idle
        labels: list[str] = []
        errors: list[BaseException] = []

        def classify() -> None:
            try:
                with grpc.insecure_channel(address) as channel:
                    stub = digits_pb2_grpc.DigitClassifierStub(channel)
                    request = pb.ClassifyRequest(
                        model="cnn", encoded=pb.EncodedImages(images=[png])
                    )
                    labels.append(stub.Classify(request, timeout=120).predictions[0].label)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=classify) for _ in range(CLIENTS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        time.sleep(5)
        settled = rss_mb(proc.pid)
    print(
        f"\n{CLIENTS} x {SIDE}x{SIDE} PNG ({len(png) / 1024:.0f} KB each) in {elapsed:.1f} s: "
        f"rss idle {idle:.0f} MB, peak +{peak - idle:.0f} MB, 5 s later +{settled - idle:.0f} MB"
    )
    assert not errors, errors
    assert labels == ["7"] * CLIENTS
    assert peak - idle < PEAK_BOUND_MB
    assert settled - idle < SETTLED_BOUND_MB
