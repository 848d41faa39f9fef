"""Triton's model-configuration and statistics extensions through the real tritonclient.grpc.

Runs in its own process for the reason given in triton_probe.py (duplicate protobuf symbols).

``descriptors NAME...`` prints tritonclient's own field table of those messages (and the
values of those enums);
``extensions ADDRESS MODEL N`` sends N known requests and one bad one, then prints what
``get_model_config`` / ``get_inference_statistics`` answer (and their errors).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2

IMAGES_PER_REQUEST = 3


def descriptor_table(name: str) -> dict[str, list | int]:
    """As tritonclient has it: a message's fields, name -> [number, type, repeated,
    message or enum type name], or an enum's values, name -> number."""
    pool = service_pb2.DESCRIPTOR.pool
    try:
        enum = pool.FindEnumTypeByName(name)
    except KeyError:
        enum = None
    if enum is not None:
        return {v.name: v.number for v in enum.values}
    table: dict[str, list | int] = {}
    for f in pool.FindMessageTypeByName(name).fields:
        kind = f.message_type or f.enum_type
        table[f.name] = [f.number, f.type, f.is_repeated, kind.full_name if kind else ""]
    return table


def status_of(call: object) -> str | None:
    try:
        call()  # type: ignore[operator]
    except triton.InferenceServerException as exc:
        return exc.status()
    return None


def extensions(address: str, model: str, requests: int) -> dict:
    """Send known traffic, then read the extensions back."""
    client = triton.InferenceServerClient(url=address)
    rng = np.random.default_rng(0)
    started_ms = time.time_ns() // 1_000_000
    for _ in range(requests):
        images = rng.random((IMAGES_PER_REQUEST, 28, 28), dtype=np.float32)
        tensor = triton.InferInput("images", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images)
        client.infer(model, [tensor])
    bad = triton.InferInput("images", [1, 5, 5], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 5, 5), dtype=np.float32))
    report: dict = {
        "bad_request": status_of(lambda: client.infer(model, [bad])),
        "started_ms": started_ms,
        "finished_ms": time.time_ns() // 1_000_000,
        "server": client.get_server_metadata(as_json=True),
        "config": client.get_model_config(model, as_json=True),
        "stats": client.get_inference_statistics(model, as_json=True),
        "all_stats": client.get_inference_statistics(as_json=True),
        "config_type": type(client.get_model_config(model)).__name__,
        "config_missing": status_of(lambda: client.get_model_config("no-such-model")),
        "stats_missing": status_of(lambda: client.get_inference_statistics("no-such-model")),
        "version_missing": status_of(lambda: client.get_model_config(model, "99")),
    }
    return report


if __name__ == "__main__":
    if sys.argv[1] == "descriptors":
        print(json.dumps({name: descriptor_table(name) for name in sys.argv[2:]}))
    else:
        print(json.dumps(extensions(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
