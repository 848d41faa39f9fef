"""The page's "read a number" mode in real headless Chromium, real server, shipped models.

A photo of a number is uploaded and a number is drawn on the pad; the page must show the
server's reading and draw a box over every digit at the place the server named.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

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

ROOT = Path(__file__).resolve().parents[3]
REPOSITORY = ROOT / "model_repository"
NUMBER = ROOT / "examples" / "number.jpg"
WAIT_S = 10
BOX_RGB = (0xE1, 0x1D, 0x48)


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    if not (REPOSITORY / "robust").is_dir():
        pytest.skip("shipped model_repository missing")
    server = ServerThread(loopback_settings(REPOSITORY)).start()
    yield server.http_url
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    # Let Chromium's own start page finish loading before the tests read the network log.
    driver.get("about:blank")
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    yield driver
    driver.quit()


@pytest.fixture
def page(browser: WebDriver, origin: str) -> Iterator[WebDriver]:
    """The page freshly loaded in read mode; afterwards: no errors, no foreign traffic."""
    requested_urls(browser)  # forget what came before (start page, the previous test)
    console_errors(browser)
    browser.get(f"{origin}/")
    WebDriverWait(browser, WAIT_S).until(lambda d: find(d, "model").is_enabled())
    find(browser, "read-mode").click()
    yield browser
    assert console_errors(browser) == []
    urls = requested_urls(browser)
    assert any(u.startswith(f"{origin}/v1/read") for u in urls), urls
    assert not foreign_requests(urls, origin)


def find(driver: WebDriver, name: str):
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def wait_for_reading(driver: WebDriver) -> str:
    WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(
        lambda d: find(d, "read-text").text,
        f"no reading; status: {find(driver, 'status').text}",
    )
    return find(driver, "read-text").text


def canvas_rgb(driver: WebDriver) -> np.ndarray:
    width, height, data = driver.execute_script(
        "const c = document.querySelector('[data-testid=read-canvas]');"
        "return [c.width, c.height, Array.from(c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data)];"
    )
    return np.asarray(data, np.uint8).reshape(height, width, 4)[..., :3]


def server_reading(origin: str, body: bytes) -> dict:
    request = urllib.request.Request(
        f"{origin}/v1/read", data=body, headers={"Content-Type": "image/jpeg"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=WAIT_S) as response:
        return json.loads(response.read())


def test_an_uploaded_photo_of_a_number_gets_boxes_and_labels(page: WebDriver, origin: str):
    find(page, "upload").send_keys(str(NUMBER))
    assert wait_for_reading(page) == "2026"
    direct = server_reading(origin, NUMBER.read_bytes())
    assert find(page, "read-canvas").get_attribute("data-boxes") == str(len(direct["digits"]))
    pixels = canvas_rgb(page)
    assert pixels.shape[:2] == (192, 451)  # the photo's own size
    for digit in direct["digits"]:
        box = digit["box"]
        # The box's left edge is drawn in the box colour at the server's coordinates.
        edge = pixels[box["y"] + box["height"] // 2, box["x"]].astype(int)
        assert np.abs(edge - BOX_RGB).max() <= 40, (box, edge)
    assert "Read 4 digit(s)" in find(page, "status").text


def test_a_drawn_number_is_read_left_to_right(page: WebDriver):
    one = [(0.2, 0.3), (0.2, 0.7)]
    seven = [(0.45, 0.3), (0.75, 0.3), (0.55, 0.7)]
    draw(page, find(page, "pad"), [one, seven])
    assert wait_for_reading(page) == "17"
    assert find(page, "read-canvas").get_attribute("data-boxes") == "2"


def test_leaving_read_mode_classifies_one_digit_again(page: WebDriver):
    find(page, "upload").send_keys(str(NUMBER))
    assert wait_for_reading(page) == "2026"
    find(page, "read-mode").click()
    assert not find(page, "read-canvas").is_displayed()
    WebDriverWait(page, WAIT_S).until(lambda d: find(d, "prediction").text)
