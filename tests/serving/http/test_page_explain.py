"""The page's explain toggle in real headless Chromium: the saliency map of the answer is
drawn over the 28x28 model input, hottest on the ink, and goes away when turned off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.helpers.browser import console_errors
from tests.serving.http.test_page import (  # noqa: F401 (fixtures)
    DEFAULT,
    answer_for,
    browser,
    draw_digit,
    find,
    origin,
    page,
    page_server,
    prepared_pixels,
    pytestmark,
    save_screenshot,
    wait_for,
)


def overlay_rgba(driver: WebDriver) -> np.ndarray:
    data = driver.execute_script(
        "const c = document.querySelector('[data-testid=saliency]');"
        "return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data);"
    )
    return np.asarray(data, dtype=np.float32).reshape(28, 28, 4)


@pytest.mark.parametrize("digit", ["7", "4"])
def test_explain_shows_a_map_over_the_model_input(page: WebDriver, digit: str, tmp_path: Path):  # noqa: F811
    overlay = find(page, "saliency")
    assert not overlay.is_displayed()
    find(page, "explain").click()
    draw_digit(page, digit)
    assert answer_for(page, DEFAULT) == digit
    wait_for(page, lambda: overlay.get_attribute("data-filled") == "true", "no saliency drawn")
    assert overlay.is_displayed() and overlay.rect == find(page, "prepared").rect
    rgba = overlay_rgba(page)
    red = (rgba[..., 0] > rgba[..., 2]) & (rgba[..., 3] > 0)
    assert red.any() and rgba[..., 3].max() > 200
    # The strongest red lies on the digit or right beside it (a 4x4 window's reach).
    ink = prepared_pixels(page) > 0.1
    near_ink = np.zeros_like(ink)
    for r, c in zip(*np.nonzero(ink), strict=True):
        near_ink[max(0, r - 3) : r + 4, max(0, c - 3) : c + 4] = True
    hottest = red & (rgba[..., 3] >= 0.5 * rgba[..., 3].max())
    assert hottest.any() and near_ink[hottest].all()
    save_screenshot(page, tmp_path, f"explain-{digit}.png")
    # Off again: the answer is asked for once more, without a map.
    find(page, "explain").click()
    wait_for(page, lambda: not overlay.is_displayed(), "the map stayed after explain was off")
    assert answer_for(page, DEFAULT) == digit
    assert console_errors(page) == []
