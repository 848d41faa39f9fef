"""The draw-a-digit page in real headless Chromium against the real server and shipped models.

Digits are drawn with scripted pointer strokes (press, moves, release), so the page's own
pointer handling, canvas export, upload and rendering run exactly as for a person.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.helpers.browser import (
    chromium_missing,
    console_errors,
    draw,
    foreign_requests,
    requested_urls,
    start_chromium,
)
from tests.helpers.server_thread import ServerThread, loopback_settings

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))

# The server's default model: what the page shows first.
DEFAULT = "robust"
REPOSITORY = Path(__file__).resolve().parents[3] / "model_repository"


def _served_version(name: str) -> str:
    """The version the server loads for ``name``: the highest one in the repository."""
    return str(max((int(p.name) for p in (REPOSITORY / name).glob("[0-9]*")), default=0))


# The drawing the README's screenshot (docs/page.png) shows.
README_DIGIT = "7"
WAIT_S = 10


def ellipse(cx: float, cy: float, rx: float, ry: float, points: int = 24) -> list:
    """A closed loop, starting at the top, clockwise."""
    return [
        (cx + rx * math.sin(2 * math.pi * i / points), cy - ry * math.cos(2 * math.pi * i / points))
        for i in range(points + 1)
    ]


# Shapes a person would draw; each was checked to be read right by the shipped cnn (the test
# below asserts it, it does not assume it).
DIGITS = {
    "1": [[(0.5, 0.15), (0.5, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    "0": [ellipse(0.5, 0.5, 0.25, 0.35)],
    "4": [[(0.6, 0.85), (0.6, 0.15), (0.25, 0.6), (0.8, 0.6)]],
}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def page_server() -> Iterator[ServerThread]:
    """The real server (gRPC + HTTP on port 0) with the shipped model repository."""
    if not (REPOSITORY / "cnn").is_dir():
        pytest.skip("shipped model_repository missing")
    server = ServerThread(loopback_settings(REPOSITORY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def origin(page_server: ServerThread) -> str:
    return page_server.http_url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture
def page(browser: WebDriver, origin: str) -> Iterator[WebDriver]:
    """The page freshly loaded, models listed; afterwards: no foreign traffic."""
    open_page(browser, origin)
    yield browser
    assert_only_local_requests(browser, origin)


# ----------------------------------------------------------------------------- helpers


def open_page(browser: WebDriver, origin: str) -> None:
    """Load the page at desktop size and wait until the model list is in."""
    browser.set_window_size(1200, 1000)
    # Forget what came before (Chromium's start page, the previous test).
    requested_urls(browser)
    console_errors(browser)
    browser.get(f"{origin}/")
    WebDriverWait(browser, WAIT_S).until(lambda d: find(d, "model").is_enabled())


def assert_only_local_requests(browser: WebDriver, origin: str) -> None:
    """Everything the page fetched (document, modules, CSS, API calls) came from ``origin``."""
    urls = requested_urls(browser)
    assert f"{origin}/" in urls and f"{origin}/v1/models" in urls, urls
    assert f"{origin}/static/app.js" in urls, urls
    assert not foreign_requests(urls, origin)


def find(driver: WebDriver, name: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def wait_for(driver: WebDriver, condition, message: str = "") -> None:
    WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: condition(), message)


def answer_for(driver: WebDriver, model: str) -> str:
    """Wait for an answer from ``model`` and return the shown label."""
    wait_for(
        driver,
        lambda: find(driver, "meta-model").text == model and find(driver, "prediction").text,
        f"no answer from {model}; status: {find(driver, 'status').text}",
    )
    return find(driver, "prediction").text


def draw_digit(driver: WebDriver, digit: str, pointer: str = "mouse") -> None:
    draw(driver, find(driver, "pad"), DIGITS[digit], pointer)


def bars(driver: WebDriver) -> list[tuple[str, float]]:
    rows = driver.find_elements(By.CSS_SELECTOR, '[data-testid="probabilities"] li')
    return [
        (r.get_attribute("data-label"), float(r.get_attribute("data-probability"))) for r in rows
    ]


def prepared_pixels(driver: WebDriver) -> np.ndarray:
    """The prepared 28x28 canvas as floats in [0,1] (its red channel)."""
    data = driver.execute_script(
        "const c = document.querySelector('[data-testid=prepared]');"
        "return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data);"
    )
    return np.asarray(data, dtype=np.float32).reshape(28, 28, 4)[..., 0] / 255.0


def pad_is_blank(driver: WebDriver) -> bool:
    return driver.execute_script(
        "const c = document.querySelector('[data-testid=pad]');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "return d.every(v => v === 255);"
    )


def post_classify(origin: str, body: bytes, model: str) -> dict:
    """The server's own answer for an image, asked directly over HTTP (debug: prepared pixels)."""
    request = urllib.request.Request(
        f"{origin}/v1/classify?model={model}&debug=1",
        data=body,
        headers={"Content-Type": "image/png"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WAIT_S) as response:
        return json.loads(response.read())


def photo_of_a_four() -> bytes:
    """A 'photo' of a handwritten 4: dark ink on grey paper, small and off-centre, blurred."""
    image = Image.new("L", (320, 240), color=214)
    pen = ImageDraw.Draw(image)
    pen.line([(200, 200), (200, 40), (120, 150), (235, 150)], fill=40, width=14, joint="curve")
    image = image.filter(ImageFilter.GaussianBlur(1.5)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_screenshot(driver: WebDriver, tmp_path: Path, name: str, readme: bool = False) -> Path:
    """Into the test's output dir; the README's one also into $DIGITS_SCREENSHOT_DIR/page.png.

    ``DIGITS_SCREENSHOT_DIR=docs pytest tests/serving/http/test_page.py`` renews docs/page.png.
    """
    path = tmp_path / name
    assert driver.save_screenshot(str(path)), "screenshot failed"
    extra = os.environ.get("DIGITS_SCREENSHOT_DIR")
    if readme and extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / "page.png")
    return path


# ----------------------------------------------------------------------------- tests


def test_initial_page_has_models_and_an_empty_answer(page: WebDriver, origin: str):
    with urllib.request.urlopen(f"{origin}/v1/models", timeout=WAIT_S) as response:
        listed = json.loads(response.read())
    picker = Select(find(page, "model"))
    assert [o.get_attribute("value") for o in picker.options] == [
        m["name"] for m in listed["models"]
    ]
    assert picker.first_selected_option.get_attribute("value") == listed["default_model"]
    assert find(page, "prediction").text == ""
    default = next(m for m in listed["models"] if m["name"] == listed["default_model"])
    assert [label for label, _ in bars(page)] == default["labels"]
    assert pad_is_blank(page)
    assert console_errors(page) == []


@pytest.mark.parametrize("digit", sorted(DIGITS))
def test_a_drawn_digit_is_read_right(page: WebDriver, digit: str, tmp_path: Path):
    draw_digit(page, digit)
    assert answer_for(page, DEFAULT) == digit
    shown = bars(page)
    assert [label for label, _ in shown] == [str(i) for i in range(10)]
    winner = max(shown, key=lambda bar: bar[1])
    assert winner[0] == digit and winner[1] > 0.5
    assert math.isclose(sum(p for _, p in shown), 1.0, abs_tol=1e-3)
    assert find(page, "meta-version").text == _served_version(DEFAULT)
    assert find(page, "meta-provider").text.endswith("ExecutionProvider")
    assert re.fullmatch(r"\d+ ms", find(page, "meta-rtt").text)
    # The 28x28 the server classified is shown: a white digit on black.
    seen = prepared_pixels(page)
    assert seen.max() > 0.9 and seen[0].max() == 0 and seen[:, 0].max() == 0
    save_screenshot(page, tmp_path, f"page-{digit}.png", readme=digit == README_DIGIT)
    assert console_errors(page) == []


@pytest.mark.parametrize("pointer", ["pen", "touch"])
def test_pen_and_touch_draw_too(page: WebDriver, pointer: str):
    draw_digit(page, "7", pointer)
    assert answer_for(page, DEFAULT) == "7"
    assert find(page, "pad").get_attribute("data-pointer") == pointer
    assert console_errors(page) == []


def test_switching_models_reclassifies_the_drawing(page: WebDriver):
    draw_digit(page, "7")
    assert answer_for(page, DEFAULT) == "7"
    picker = Select(find(page, "model"))
    picker.select_by_value("one_vs_rest")
    # The binary model's own two labels, as the server gives them.
    assert answer_for(page, "one_vs_rest") == "not 1"
    assert [label for label, _ in bars(page)] == ["not 1", "1"]
    picker.select_by_value("mlp100")
    assert answer_for(page, "mlp100") == "7"
    assert len(bars(page)) == 10
    # A 1 under the binary model is "1".
    find(page, "clear").click()
    picker.select_by_value("one_vs_rest")
    draw_digit(page, "1")
    assert answer_for(page, "one_vs_rest") == "1"
    assert console_errors(page) == []


def test_uploaded_photo_shows_the_28x28_the_server_classified(
    page: WebDriver, origin: str, tmp_path: Path
):
    photo = photo_of_a_four()
    path = tmp_path / "four.png"
    path.write_bytes(photo)
    find(page, "upload").send_keys(str(path))
    shown = answer_for(page, DEFAULT)
    direct = post_classify(origin, photo, DEFAULT)
    assert shown == direct["predictions"][0]["label"] == "4"
    uploaded = find(page, "uploaded")
    assert uploaded.is_displayed()
    assert page.execute_script("return arguments[0].naturalWidth", uploaded) == 320
    # Pixel for pixel what the server prepared (8-bit canvas: within one grey level).
    expected = np.asarray(direct["prepared"][0], dtype=np.float32)
    np.testing.assert_allclose(prepared_pixels(page), expected, atol=1 / 255 + 1e-6)
    assert pad_is_blank(page), "an upload replaces the drawing"
    save_screenshot(page, tmp_path, "page-upload.png")
    assert console_errors(page) == []


def test_a_dropped_file_is_classified(page: WebDriver):
    # A real drag from the desktop cannot be scripted; dispatch the drop event the browser
    # would fire, carrying a real File.
    page.execute_script(
        "const [bytes] = arguments;"
        "const file = new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'});"
        "const data = new DataTransfer(); data.items.add(file);"
        "const zone = document.querySelector('[data-testid=dropzone]');"
        "zone.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));",
        list(photo_of_a_four()),
    )
    assert answer_for(page, DEFAULT) == "4"
    assert find(page, "uploaded").is_displayed()
    assert console_errors(page) == []


def test_clear_empties_the_pad_and_the_answer(page: WebDriver):
    draw_digit(page, "0")
    assert answer_for(page, DEFAULT) == "0"
    find(page, "clear").click()
    assert find(page, "prediction").text == ""
    assert pad_is_blank(page)
    assert prepared_pixels(page).max() == 0
    assert all(p == 0 for _, p in bars(page))
    assert find(page, "meta-model").text == "\N{EN DASH}"
    # Switching models with nothing drawn sends nothing and shows nothing.
    Select(find(page, "model")).select_by_value("mlp16")
    assert find(page, "prediction").text == ""
    assert console_errors(page) == []


def test_server_errors_show_in_the_status_line(page: WebDriver, tmp_path: Path):
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), color=255).save(blank)
    find(page, "upload").send_keys(str(blank))
    status = find(page, "status")
    wait_for(page, lambda: status.get_attribute("data-kind") == "error", status.text)
    assert status.get_attribute("role") == "status"
    assert status.text.startswith("Error 400:") and "no digit" in status.text, status.text
    assert find(page, "prediction").text == ""
    # The only console entry is Chromium's own note of the 400 response.
    errors = console_errors(page)
    assert len(errors) == 1 and "400" in errors[0] and "/v1/classify" in errors[0], errors


def test_keyboard_only_use(page: WebDriver):
    draw_digit(page, "1")
    assert answer_for(page, DEFAULT) == "1"
    # Every control is a real, labelled form control or button.
    for name in ("model", "upload"):
        control = find(page, name)
        label = page.find_elements(By.CSS_SELECTOR, f'label[for="{control.get_attribute("id")}"]')
        assert label and label[0].text, name
    assert find(page, "clear").tag_name == "button"
    # Tab from the model picker reaches Clear; Enter on it clears.
    page.execute_script("arguments[0].focus()", find(page, "model"))
    ActionChains(page).send_keys(Keys.TAB).perform()
    focused = page.switch_to.active_element
    assert focused.get_attribute("data-testid") == "clear"
    focused.send_keys(Keys.ENTER)
    assert find(page, "prediction").text == ""
    # Next stops: the explain toggle under the answer, then the (visually hidden) file input,
    # whose styled label shows the focus ring.
    ActionChains(page).send_keys(Keys.TAB).perform()
    assert page.switch_to.active_element.get_attribute("data-testid") == "explain"
    ActionChains(page).send_keys(Keys.TAB).perform()
    assert page.switch_to.active_element.get_attribute("data-testid") == "upload"
    ring = page.execute_script(
        "return getComputedStyle(document.querySelector('label[for=upload]')).outlineStyle"
    )
    assert ring != "none"
    assert console_errors(page) == []


def test_a_model_that_failed_to_load_is_listed_but_not_selectable(
    browser: WebDriver, tmp_path: Path
):
    repo = tmp_path / "repo"
    shutil.copytree(REPOSITORY / "cnn", repo / "cnn")
    shutil.copytree(REPOSITORY / "mlp16", repo / "broken")
    manifest = json.loads((repo / "broken" / "1" / "model.json").read_text())
    (repo / "broken" / "1" / "model.json").write_text(json.dumps({**manifest, "name": "broken"}))
    (repo / "broken" / "1" / "model.onnx").write_bytes(b"not an ONNX model")
    server = ServerThread(loopback_settings(repo)).start()
    try:
        open_page(browser, server.http_url)
        picker = Select(find(browser, "model"))
        broken = next(o for o in picker.options if o.get_attribute("value") == "broken")
        assert not broken.is_enabled() and "not ready" in broken.text
        # The server's reason is on the option (its tooltip).
        assert "sha256" in broken.get_attribute("title")
        assert picker.first_selected_option.get_attribute("value") == "cnn"
        draw_digit(browser, "1")
        assert answer_for(browser, "cnn") == "1"
        assert console_errors(browser) == []
        assert_only_local_requests(browser, server.http_url)
    finally:
        server.stop()


def test_phone_sized_viewport(page: WebDriver, tmp_path: Path):
    page.set_window_size(375, 812)
    inner = page.execute_script("return document.documentElement.clientWidth")
    assert page.execute_script("return document.documentElement.scrollWidth") <= inner
    pad = find(page, "pad").rect
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= inner and pad["width"] >= 250
    # Drawing still maps to the right canvas pixels at this CSS size.
    draw_digit(page, "7")
    assert answer_for(page, DEFAULT) == "7"
    save_screenshot(page, tmp_path, "page-phone.png")
    assert console_errors(page) == []
