"""Input preparation: accuracy through a real server per condition, and time per image.

    python -m bench.preparation [--repository model_repository] [--model robust] [--count 500]

Prints one line per condition: how many images, and the share the model read right, sent as
PNG/JPEG files through the typed gRPC API of a real server on a loopback port (so the whole
preparation runs, as for a user). Conditions: MNIST *test* digits as plain 28x28 scans, the
real handwriting and page-like drawings of training.handwriting, and MNIST test digits
photographed under examples/render.py's looks (uneven light and shadow, EXIF-turned, coloured
ink, pencil on grey paper, specks and ruled lines). With ``--numbers``, sheets of 2-6 digits
are read through ``Read`` (exact-number rate and per-digit accuracy). Then the p50 time of
``serving.preprocess.prepare`` for a 160x120 photo and a 12-megapixel phone JPEG (with
``--baseline main`` also of serving/preprocess.py as it is at that git ref).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from examples import render

BATCH = 64


def _conditions(count: int, seed: int) -> dict[str, tuple[list[bytes], np.ndarray]]:
    from training.handwriting import build_eval_set
    from training.mnist import load_mnist

    mnist = load_mnist()
    x, y = mnist.x_test, mnist.y_test
    sets: dict[str, tuple[list[bytes], np.ndarray]] = {}
    sets["mnist scans 28x28 png"] = ([render.scan_png(d) for d in x[:count]], y[:count])
    hand = build_eval_set(seed, ["mfeat", "strokes"], strokes_per_digit=20)
    for part in ("mfeat", "strokes"):
        keep = hand.parts == part
        files = [f for f, k in zip(hand.images, keep, strict=True) if k]
        name = "real handwriting (mfeat)" if part == "mfeat" else "page-like drawings"
        sets[name] = (files, hand.labels[keep])
    photo_x, photo_y = x[count : 2 * count], y[count : 2 * count]
    looks: list[tuple[str, render.Look, int, bool]] = [
        ("photo even light", render.SCAN, 1, False),
        ("photo uneven light+shadow", render.UNEVEN, 1, False),
        ("photo EXIF 6 (even light)", render.SCAN, 6, False),
        ("photo EXIF 6 + uneven light", render.UNEVEN, 6, False),
        ("photo blue ink", render.BLUE_INK, 1, False),
        ("photo red ink", render.RED_INK, 1, False),
        ("photo pencil on grey", render.PENCIL_ON_GREY, 1, False),
        ("photo specks+lines+edge", render.SCAN, 1, True),
    ]
    for name, look, orientation, clutter in looks:
        rng = np.random.default_rng([seed, len(sets)])
        files = []
        for digit in photo_x:
            rgb = render.digit_photo(digit, look, rng)
            if clutter:
                rgb = render.specks_and_lines(rgb, rng)
            files.append(render.encode(rgb, "JPEG", orientation))
        sets[name] = (files, photo_y)
    return sets


def _numbers(count: int, seed: int) -> list[tuple[bytes, str]]:
    from training.mnist import load_mnist

    mnist = load_mnist()
    rng = np.random.default_rng([seed, 99])
    sheets = []
    for index in range(count):
        length = 2 + index % 5
        picks = rng.choice(len(mnist.x_test), length, replace=False)
        look = render.UNEVEN if index % 2 else render.SCAN
        rgb, _ = render.number_photo(list(mnist.x_test[picks]), look, rng)
        text = "".join(str(int(d)) for d in mnist.y_test[picks])
        sheets.append((render.encode(rgb, "JPEG"), text))
    return sheets


async def _accuracy(
    address: str, model: str, sets: dict, numbers: list[tuple[bytes, str]]
) -> list[str]:
    import grpc

    from serving.api import digits_pb2 as pb
    from serving.api import digits_pb2_grpc

    lines = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        for name, (files, labels) in sets.items():
            predicted: list[int] = []
            for start in range(0, len(files), BATCH):
                request = pb.ClassifyRequest(
                    model=model, encoded=pb.EncodedImages(images=files[start : start + BATCH])
                )
                response = await stub.Classify(request, timeout=120)
                predicted.extend(int(p.label) for p in response.predictions)
            right = float(np.mean(np.asarray(predicted) == np.asarray(labels)))
            lines.append(f"{name:<32} {len(files):>5}  {right:.4f}")
        if numbers:
            exact = digits_right = digits_total = 0
            for data, text in numbers:
                answer = await stub.Read(pb.ReadRequest(model=model, image=data), timeout=60)
                exact += answer.text == text
                got = answer.text.replace("\n", "")
                digits_total += len(text)
                if len(got) == len(text):
                    digits_right += sum(a == b for a, b in zip(got, text, strict=True))
            lines.append(
                f"{'numbers of 2-6 digits, exact':<32} {len(numbers):>5}  "
                f"{exact / len(numbers):.4f}"
            )
            lines.append(
                f"{'numbers, per digit':<32} {digits_total:>5}  {digits_right / digits_total:.4f}"
            )
    return lines


def _serve_and_measure(repository: Path, model: str, sets: dict, numbers: list) -> list[str]:
    from bench.servers import in_process_settings
    from serving.app import ServerApp

    async def run() -> list[str]:
        app = ServerApp(in_process_settings(repository))
        await app.start()
        try:
            return await _accuracy(f"127.0.0.1:{app.port}", model, sets, numbers)
        finally:
            await app.stop(1.0)

    return asyncio.run(run())


def _p50_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU (this process) milliseconds per call. On a shared machine the
    CPU time is the steadier of the two."""
    fn()  # warm up
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def _baseline(ref: str) -> Callable[[bytes], object]:
    """``prepare`` of serving/preprocess.py as it was at git ``ref`` (e.g. main before the
    preparation package), loaded from a temporary copy."""
    import importlib.util
    import subprocess
    import tempfile

    source = subprocess.run(
        ["git", "show", f"{ref}:serving/preprocess.py"], check=True, capture_output=True
    ).stdout
    folder = Path(tempfile.mkdtemp())
    (folder / "baseline_preprocess.py").write_bytes(source)
    spec = importlib.util.spec_from_file_location(
        "baseline_preprocess", folder / "baseline_preprocess.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.prepare


def timing(seed: int, repeats: int, baseline: str = "") -> list[str]:
    """p50 of ``prepare`` for a 160x120 photo and a 4000x3000 (12 MP) phone JPEG."""
    from serving.preprocess import prepare
    from training.mnist import load_mnist

    digit = load_mnist().x_test[0]
    rng = np.random.default_rng(seed)
    small = render.encode(render.digit_photo(digit, render.UNEVEN, rng), "JPEG")
    big = render.encode(
        render.digit_photo(digit, render.UNEVEN, rng, size=(4000, 3000), fill=0.4),
        "JPEG",
        quality=90,
    )
    contenders = [("now", prepare)]
    if baseline:
        contenders.append((baseline, _baseline(baseline)))
    lines = []
    for name, data, runs in (("160x120", small, repeats * 20), ("4000x3000", big, repeats)):
        for who, fn in contenders:
            wall, cpu = _p50_ms(lambda fn=fn, data=data: fn(data), runs)
            lines.append(
                f"prepare p50, {name} JPEG ({len(data) // 1024} KiB), {who}: "
                f"wall {wall:.2f} ms, cpu {cpu:.2f} ms"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; exit 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.preparation", description=__doc__)
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--model", default="robust")
    parser.add_argument("--count", type=int, default=500, help="images per MNIST condition")
    parser.add_argument("--numbers", type=int, default=0, help="number sheets read via Read")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeats", type=int, default=20, help="timing runs (12 MP image)")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--baseline",
        default="",
        metavar="GIT_REF",
        help="also time serving/preprocess.py at this ref",
    )
    args = parser.parse_args(argv)
    if not args.skip_accuracy:
        sets = _conditions(args.count, args.seed)
        numbers = _numbers(args.numbers, args.seed) if args.numbers else []
        print(f"model {args.model}: condition, images, accuracy", flush=True)
        for line in _serve_and_measure(args.repository, args.model, sets, numbers):
            print(line, flush=True)
    for line in timing(args.seed, args.repeats, args.baseline):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
