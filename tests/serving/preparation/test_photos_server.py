"""Photos and numbers through a real server (REST and gRPC) with the shipped robust model.

One test per condition of issue 21: lighting, EXIF, specks and lines, colour ink, several
digits, touching and broken digits, bad input. The photos are MNIST *test* digits rendered by
examples/render.py; the same digits as plain scans are read right by robust, so a loss here
is the preparation's.
"""

from __future__ import annotations

import io
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image, ImageDraw

from examples import render
from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from tests.helpers.server_thread import ServerThread, loopback_settings

SHIPPED = Path(__file__).resolve().parents[3] / "model_repository"
# Enough digits per condition that the old preparation (22-49% on these) cannot pass.
COUNT = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("models")
    for name in ("robust", "one_vs_rest"):
        newest = max((SHIPPED / name).glob("[0-9]*"), key=lambda p: int(p.name))
        shutil.copytree(newest, root / name / newest.name)
    server = ServerThread(loopback_settings(root)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub(server: ServerThread) -> Iterator[digits_pb2_grpc.DigitClassifierStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield digits_pb2_grpc.DigitClassifierStub(channel)


@pytest.fixture(scope="module")
def mnist():
    from training.mnist import load_mnist

    return load_mnist()


def post(server: ServerThread, path: str, body: bytes, kind: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{server.http_url}{path}", data=body, headers={"Content-Type": kind}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def classify(stub, files: list[bytes]) -> list[int]:
    request = pb.ClassifyRequest(encoded=pb.EncodedImages(images=files))
    return [int(p.label) for p in stub.Classify(request, timeout=60).predictions]


def photos(mnist, look: render.Look, orientation: int = 1, clutter: bool = False, seed=0):
    rng = np.random.default_rng(seed)
    files = []
    for digit in mnist.x_test[:COUNT]:
        rgb = render.digit_photo(digit, look, rng)
        if clutter:
            rgb = render.specks_and_lines(rgb, rng)
        files.append(render.encode(rgb, "JPEG", orientation))
    return files, mnist.y_test[:COUNT]


def accuracy(stub, files, labels) -> float:
    return float(np.mean(np.asarray(classify(stub, files)) == labels))


def test_plain_scans_are_read_right(stub, mnist):
    files = [render.scan_png(d) for d in mnist.x_test[:COUNT]]
    assert accuracy(stub, files, mnist.y_test[:COUNT]) >= 0.96


def test_uneven_light_and_shadow(stub, mnist):
    assert accuracy(stub, *photos(mnist, render.UNEVEN)) >= 0.96


def test_exif_turned_photos_are_read_as_the_upright_ones(server, stub, mnist):
    # Lossless: the turned file must give exactly the upright file's 28x28.
    rng = np.random.default_rng(1)
    for digit in mnist.x_test[:5]:
        rgb = render.digit_photo(digit, render.UNEVEN, rng)
        for orientation in (3, 6, 8):
            _, a = post(server, "/v1/classify?debug=1", render.encode(rgb, "PNG"), "image/png")
            turned = render.encode(rgb, "PNG", orientation)
            _, b = post(server, "/v1/classify?debug=1", turned, "image/png")
            np.testing.assert_array_equal(a["prepared"], b["prepared"])
    # Phone JPEGs (the turned pixels are coded a little differently): the same answers.
    files, labels = photos(mnist, render.UNEVEN, seed=2)
    turned, _ = photos(mnist, render.UNEVEN, orientation=6, seed=2)
    assert classify(stub, turned) == classify(stub, files)
    assert accuracy(stub, turned, labels) >= 0.96


def test_specks_ruled_lines_and_the_sheet_edge(stub, mnist):
    assert accuracy(stub, *photos(mnist, render.SCAN, clutter=True)) >= 0.96


@pytest.mark.parametrize("look", ["BLUE_INK", "RED_INK", "PENCIL_ON_GREY"])
def test_coloured_ink_and_paper(stub, mnist, look):
    assert accuracy(stub, *photos(mnist, getattr(render, look))) >= 0.96


def test_a_number_is_read_left_to_right_with_boxes(server, mnist):
    rng = np.random.default_rng(3)
    right = 0
    for start in range(0, 40, 4):
        count = 2 + start % 5
        digits = mnist.x_test[start : start + count]
        rgb, boxes = render.number_photo(list(digits), render.UNEVEN, rng)
        status, answer = post(server, "/v1/read", render.encode(rgb, "JPEG"), "image/jpeg")
        assert status == 200, answer
        truth = "".join(str(d) for d in mnist.y_test[start : start + count])
        right += answer["text"] == truth
        if len(answer["digits"]) == count:
            for digit, (x, y, w, h) in zip(answer["digits"], boxes, strict=True):
                box = digit["box"]
                assert abs(box["x"] - x) <= 3 and abs(box["width"] - w) <= 4, (box, (x, y, w, h))
    assert right >= 9


def test_boxes_are_in_the_upright_frame_of_an_exif_photo(stub, mnist):
    rng = np.random.default_rng(4)
    rgb, boxes = render.number_photo(list(mnist.x_test[:3]), render.SCAN, rng)
    answer = stub.Read(pb.ReadRequest(image=render.encode(rgb, "JPEG", 6)), timeout=30)
    assert answer.text == "".join(str(d) for d in mnist.y_test[:3])
    got = [(d.box.x, d.box.y, d.box.width, d.box.height) for d in answer.digits]
    for (x, y, w, h), (gx, gy, gw, gh) in zip(boxes, got, strict=True):
        assert abs(gx - x) <= 3 and abs(gy - y) <= 3 and abs(gw - w) <= 4 and abs(gh - h) <= 4


def test_two_lines_are_separated_by_a_newline(server, mnist):
    top, _ = render.number_photo(list(mnist.x_test[:3]), render.SCAN, np.random.default_rng(5))
    low, _ = render.number_photo(list(mnist.x_test[3:5]), render.SCAN, np.random.default_rng(6))
    sheet = np.full((top.shape[0] + low.shape[0], top.shape[1], 3), 245, np.uint8)
    sheet[: top.shape[0]] = top
    sheet[top.shape[0] :, : low.shape[1]] = low[:, : top.shape[1]]
    _, answer = post(server, "/v1/read", render.encode(sheet, "PNG"), "image/png")
    labels = [str(d) for d in mnist.y_test[:5]]
    assert answer["text"] == "".join(labels[:3]) + "\n" + "".join(labels[3:])
    assert [d["line"] for d in answer["digits"]] == [0, 0, 0, 1, 1]


def test_touching_digits_are_split(server, mnist):
    from scipy import ndimage

    right = total = 0
    for start in range(0, 80, 2):
        inks = [render.trim_columns(render.ink_of(d, 48)) for d in mnist.x_test[start : start + 2]]
        page, _ = render.place(inks, (200, 96), gap=-0.05)
        if ndimage.label(page > 0.3, np.ones((3, 3)))[1] != 1:
            continue  # these two happen not to touch
        rgb = render.photo(page, render.SCAN, np.random.default_rng(start))
        _, answer = post(server, "/v1/read", render.encode(rgb, "PNG"), "image/png")
        right += answer["text"] == "".join(str(d) for d in mnist.y_test[start : start + 2])
        total += 1
    # Measured: 32 of 40 touching pairs right; two narrow digits that overlap (a 1 under a
    # 5's bar) stay one (docs/design.md).
    assert total >= 10 and right >= 0.7 * total, (right, total)


def five_with_a_detached_bar() -> bytes:
    image = Image.new("L", (200, 200), 245)
    pen = ImageDraw.Draw(image)
    pen.line([(85, 40), (140, 40)], fill=20, width=12)  # the bar, not touching the body
    pen.line([(75, 58), (70, 100)], fill=20, width=12)
    pen.arc([(60, 88), (140, 165)], start=200, end=150, fill=20, width=12)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_broken_digit_is_one_digit(server):
    status, answer = post(server, "/v1/read", five_with_a_detached_bar(), "image/png")
    assert status == 200 and len(answer["digits"]) == 1, answer
    box = answer["digits"][0]["box"]
    assert box["y"] <= 36 and box["y"] + box["height"] >= 160, box  # bar and body


def test_multipart_upload_with_model_and_version(server, mnist):
    rgb, _ = render.number_photo(list(mnist.x_test[:2]), render.SCAN, np.random.default_rng(8))
    boundary = "digits-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="n.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + render.encode(rgb, "PNG")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    version = max(p.name for p in (SHIPPED / "robust").glob("[0-9]*"))
    status, answer = post(
        server,
        f"/v1/read?model=robust&version={version}",
        body,
        f"multipart/form-data; boundary={boundary}",
    )
    assert status == 200, answer
    assert answer["text"] == "".join(str(d) for d in mnist.y_test[:2])
    assert (answer["model"], answer["version"]) == ("robust", version)


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/read"])
def test_undecodable_upload_names_the_problem(server, path):
    status, answer = post(server, path, b"this is not a picture", "image/png")
    assert status == 400
    assert "PNG or JPEG" in answer["error"] and "BytesIO" not in answer["error"]
    # The server keeps serving.
    blank = render.encode(np.full((40, 40, 3), 250, np.uint8), "PNG")
    status, answer = post(server, path, blank, "image/png")
    assert status == 400 and "no digit found" in answer["error"]


def test_grpc_bad_input_is_invalid_argument(stub):
    for call in (
        lambda: stub.Read(pb.ReadRequest(image=b"GIF89a not really"), timeout=10),
        lambda: stub.Classify(
            pb.ClassifyRequest(encoded=pb.EncodedImages(images=[b"\x89PNG broken"])), timeout=10
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "PNG or JPEG" in caught.value.details()
        assert "BytesIO" not in caught.value.details()


def test_reading_needs_a_digit_model(server, mnist):
    status, answer = post(
        server, "/v1/read?model=one_vs_rest", render.scan_png(mnist.x_test[0]), "image/png"
    )
    assert status == 400 and "digits 0-9" in answer["error"]


def test_reflection_lists_read(server):
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(server.address) as channel:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName("digits.v1.DigitClassifier")
        assert service.methods_by_name["Read"].output_type.full_name == "digits.v1.ReadResponse"


def test_openapi_describes_read(server):
    with urllib.request.urlopen(f"{server.http_url}/openapi.json", timeout=10) as response:
        spec = json.loads(response.read())
    read = spec["paths"]["/v1/read"]["post"]
    assert set(read["requestBody"]["content"]) == {"image/png", "image/jpeg", "multipart/form-data"}
    assert "ReadResponse" in spec["components"]["schemas"]


def test_the_readme_examples_exist_and_its_read_answer_is_the_servers(server):
    import re

    readme = (SHIPPED.parent / "README.md").read_text()
    named = set(re.findall(r"examples/[\w.]+\.(?:png|jpg)", readme))
    assert {"examples/number.jpg", "examples/photo.jpg", "examples/digit.png"} <= named
    assert all((SHIPPED.parent / name).is_file() for name in named)
    body = (SHIPPED.parent / "examples" / "number.jpg").read_bytes()
    _, answer = post(server, "/v1/read", body, "image/jpeg")
    assert answer["text"] == "2026" and '{"text":"2026"' in readme
    for digit in answer["digits"]:
        box = digit["box"]
        assert f'"box":{{"x":{box["x"]},"y":{box["y"]},' in readme
