"""The HTTP APIs' requests, built once up front: path, headers and body bytes.

* ``rest-json``: KServe V2 REST with the tensor in JSON ``data`` (FP32 pixel/255), and the
  answer asked for in JSON too;
* ``rest-binary``: the same request with the binary-data extension (what tritonclient.http
  sends by default): the JSON header, then the raw tensor, ``Inference-Header-Content-Length``
  giving the header's length; the output asked for as raw bytes as well;
* ``http-png``: ``POST /v1/classify`` with the images as PNG files, one image as the body
  (``Content-Type: image/png``), several as ``multipart/form-data`` ``image`` fields.
"""

from __future__ import annotations

import io
import urllib.parse
from dataclasses import dataclass

import numpy as np
import orjson

from clients.load.config import LoadConfig
from clients.load.workload import V2_INPUT, v2_pixels

HEADER_LENGTH = "Inference-Header-Content-Length"
# A fixed boundary: PNG bytes are checked not to contain it when a body is built.
BOUNDARY = "digits-load-boundary-7f3a9c"


@dataclass(frozen=True)
class HttpRequest:
    """One request ready to send: everything but the connection."""

    path: str
    headers: dict[str, str]
    body: bytes


def infer_path(config: LoadConfig) -> str:
    """``/v2/models/{m}[/versions/{v}]/infer``, names URL-quoted."""
    model = urllib.parse.quote(config.model, safe="")
    version = f"/versions/{urllib.parse.quote(config.version, safe='')}" if config.version else ""
    return f"/v2/models/{model}{version}/infer"


def classify_path(config: LoadConfig) -> str:
    """``/v1/classify?model=M[&version=V]``."""
    query = {"model": config.model} | ({"version": config.version} if config.version else {})
    return f"/v1/classify?{urllib.parse.urlencode(query)}"


def _auth(config: LoadConfig) -> dict[str, str]:
    token = config.endpoint.token
    return {"Authorization": f"Bearer {token}"} if token else {}


def rest_json_request(config: LoadConfig, batch: np.ndarray) -> HttpRequest:
    """V2 REST infer with JSON tensors both ways."""
    pixels = v2_pixels(batch)
    body = orjson.dumps(
        {
            "id": "load",
            "inputs": [
                {
                    "name": V2_INPUT,
                    "datatype": "FP32",
                    "shape": list(pixels.shape),
                    "data": pixels.reshape(-1),
                }
            ],
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    headers = {"Content-Type": "application/json", **_auth(config)}
    return HttpRequest(infer_path(config), headers, body)


def rest_binary_request(config: LoadConfig, batch: np.ndarray) -> HttpRequest:
    """V2 REST infer with the binary-data extension both ways."""
    raw = v2_pixels(batch).tobytes()
    header = orjson.dumps(
        {
            "id": "load",
            "inputs": [
                {
                    "name": V2_INPUT,
                    "datatype": "FP32",
                    "shape": list(batch.shape),
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    headers = {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
        **_auth(config),
    }
    return HttpRequest(infer_path(config), headers, header + raw)


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 [28,28] image as a grayscale PNG file."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L").save(out, "PNG")
    return out.getvalue()


def png_request(config: LoadConfig, batch: np.ndarray) -> HttpRequest:
    """``/v1/classify`` with the batch as PNG files (a bare body for one image)."""
    files = [png_bytes(image) for image in batch]
    auth = _auth(config)
    if len(files) == 1:
        return HttpRequest(classify_path(config), {"Content-Type": "image/png", **auth}, files[0])
    marker = f"--{BOUNDARY}".encode()
    parts = []
    for i, data in enumerate(files):
        if marker in data:
            raise ValueError("a PNG contains the multipart boundary")
        parts.append(
            marker
            + b"\r\n"
            + f'Content-Disposition: form-data; name="image"; filename="{i}.png"\r\n'.encode()
            + b"Content-Type: image/png\r\n\r\n"
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + marker + b"--\r\n"
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **auth}
    return HttpRequest(classify_path(config), headers, body)


BUILDERS = {
    "rest-json": rest_json_request,
    "rest-binary": rest_binary_request,
    "http-png": png_request,
}
