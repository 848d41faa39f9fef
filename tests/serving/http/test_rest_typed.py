"""/v1/classify and /v1/models: the typed endpoint in all three body forms, on the real cnn."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.helpers.http import error_of, http
from tests.helpers.server_thread import ServerThread, loopback_settings

SHIPPED = Path(__file__).resolve().parents[3] / "model_repository"


@pytest.fixture(scope="module")
def shipped():
    server = ServerThread(loopback_settings(SHIPPED)).start()
    yield server
    server.stop()


def drawn_png(digit: str = "7", side: int = 280) -> bytes:
    """A digit drawn dark-on-light like a pen on paper."""
    image = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(image)
    w = side // 14
    if digit == "7":
        draw.line([(70, 60), (210, 60), (120, 230)], fill=0, width=w, joint="curve")
    else:  # "1"
        draw.line([(140, 40), (140, 240)], fill=0, width=w)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _multipart(files: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="d{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_png_body_is_classified_with_every_probability(shipped):
    status, headers, body = http(
        "POST", f"{shipped.http_url}/v1/classify", drawn_png("7"), {"content-type": "image/png"}
    )
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model"] == "robust" and answer["labels"] == [str(d) for d in range(10)]
    (prediction,) = answer["predictions"]
    assert prediction["label"] == "7"
    assert len(prediction["probabilities"]) == 10
    assert abs(sum(prediction["probabilities"]) - 1) < 1e-4
    assert prediction["probability"] == max(prediction["probabilities"])
    assert answer["request_id"] == headers["x-request-id"]


def test_multipart_with_several_images_answers_in_order(shipped):
    body, kind = _multipart([drawn_png("1"), drawn_png("7")])
    status, _, reply = http(
        "POST", f"{shipped.http_url}/v1/classify?model=mlp100", body, {"content-type": kind}
    )
    assert status == 200, reply
    answer = json.loads(reply)
    assert answer["model"] == "mlp100"
    assert [p["label"] for p in answer["predictions"]] == ["1", "7"]


def test_json_pixels_and_debug_returns_the_prepared_image(shipped):
    from clients.mnist_images import first_test_images

    images, digits = first_test_images(3)
    for pixel_type, data in (("uint8", images), ("float32", images / 255.0)):
        body = json.dumps({"images": data.tolist(), "pixel_type": pixel_type}).encode()
        status, _, reply = http(
            "POST",
            f"{shipped.http_url}/v1/classify?debug=1",
            body,
            {"content-type": "application/json"},
        )
        assert status == 200, reply
        answer = json.loads(reply)
        assert [p["label"] for p in answer["predictions"]] == [str(d) for d in digits]
        prepared = np.asarray(answer["prepared"])
        assert prepared.shape == (3, 28, 28)
        assert np.allclose(prepared, images / 255.0, atol=1e-3)


def test_debug_on_a_photo_shows_the_mnist_style_28x28(shipped):
    status, _, reply = http(
        "POST",
        f"{shipped.http_url}/v1/classify?debug=true",
        drawn_png("1"),
        {"content-type": "image/png"},
    )
    prepared = np.asarray(json.loads(reply)["prepared"][0])
    assert status == 200 and prepared.shape == (28, 28)
    # White digit on black, centred: the border is dark, the middle column bright.
    assert prepared[0].max() < 0.1 and prepared[:, 14].max() > 0.9


def test_one_vs_rest_lists_its_two_labels(shipped):
    status, _, reply = http("GET", f"{shipped.http_url}/v1/models")
    listing = json.loads(reply)
    assert status == 200 and listing["default_model"] == "robust"
    by_name = {m["name"]: m for m in listing["models"]}
    assert {"cnn", "mlp100", "one_vs_rest"} <= set(by_name)
    assert len(by_name["one_vs_rest"]["labels"]) == 2
    assert by_name["cnn"]["ready"] and by_name["cnn"]["versions"] == ["1"]


@pytest.mark.parametrize(
    ("query", "body", "kind", "status", "expected"),
    [
        ("", b"not an image", "image/png", 400, "cannot decode"),
        ("", b"", "image/png", 400, "empty"),
        ("", b"{}", "application/json", 400, '"images"'),
        ("", b'{"images": [[[300]]], "pixel_type": "uint8"}', "application/json", 400, "[N,28,28]"),
        (
            "",
            json.dumps({"images": [[300] * 28] * 28}).encode(),
            "application/json",
            400,
            "[0, 255]",
        ),
        ("", b"x", "text/plain", 400, "unsupported Content-Type"),
        ("?model=nope", b"x", "image/png", 404, "'nope'"),
    ],
)
def test_bad_classify_requests_get_a_status_and_a_reason(
    shipped, query, body, kind, status, expected
):
    got, _, reply = http(
        "POST", f"{shipped.http_url}/v1/classify{query}", body, {"content-type": kind}
    )
    assert got == status
    assert expected in error_of(reply)


def test_blank_image_says_no_digit_found(shipped):
    blank = io.BytesIO()
    Image.new("L", (50, 50), 255).save(blank, "PNG")
    got, _, reply = http(
        "POST", f"{shipped.http_url}/v1/classify", blank.getvalue(), {"content-type": "image/png"}
    )
    assert got == 400 and "no digit found" in error_of(reply)
