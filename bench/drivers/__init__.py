"""Benchmark client kinds, one module each; a module that defines ``DRIVER`` is one.

Today: python_aio (the project's load generator, gRPC and HTTP) and h2load_native (h2load:
V2 gRPC over HTTP/2, V2 REST binary over ``--h1``). Adding a client kind is adding a module
here that implements :class:`bench.drivers.base.Driver`; its rows carry its name in their
``client`` field.
"""

from __future__ import annotations

import importlib
import pkgutil

from bench.drivers.base import Driver


def drivers() -> dict[str, Driver]:
    """Every driver in this package by name."""
    found: dict[str, Driver] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        driver = getattr(module, "DRIVER", None)
        if driver is not None:
            found[driver.name] = driver
    return found
