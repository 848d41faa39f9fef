"""Image decoding inside the server's CPU and memory budget.

Decoding a photo costs far more than classifying it, and its memory grows with the pixel
count. Decodes therefore run on a small dedicated pool (never asyncio's default executor,
which would compete with the compute threads and onnxruntime for the same cores), at most
``max_concurrent`` at once, each image on its own so one large request spreads over the pool.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from serving.preparation import Reading, read
from serving.preprocess import prepare

log = logging.getLogger(__name__)


def _malloc_trim() -> object:
    """glibc's malloc_trim, or a no-op elsewhere.

    After a large decode glibc keeps the freed heap for reuse, so the process would stay at
    its peak size; trimming hands it back to the system.
    """
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    return trim or (lambda _pad: 0)


class DecodePool:
    """Bounded, budgeted PNG/JPEG -> 28x28 conversion."""

    def __init__(self, max_concurrent: int, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self._pool = ThreadPoolExecutor(max_concurrent, thread_name_prefix="decode")
        self._trim = _malloc_trim()
        self._busy = 0

    async def prepare(self, files: Sequence[bytes]) -> np.ndarray:
        """Every file as an MNIST-style float32 image: [N,28,28]; InvalidInput names the bad one."""
        loop = asyncio.get_running_loop()
        with self._in_use():
            images = await asyncio.gather(
                *(
                    loop.run_in_executor(
                        self._pool, prepare, data, f"image {index}", self.max_pixels
                    )
                    for index, data in enumerate(files)
                )
            )
        return np.stack(images)

    async def read(self, data: bytes) -> Reading:
        """Every digit of one image, prepared the MNIST way, with its box and text line."""
        loop = asyncio.get_running_loop()
        with self._in_use():
            return await loop.run_in_executor(self._pool, read, data, "image", self.max_pixels)

    @contextmanager
    def _in_use(self) -> Iterator[None]:
        """Count a decode in flight; the last one to finish hands freed memory back."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._trim(0)

    def shutdown(self) -> None:
        """Stop the decode threads (pending decodes are cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
