"""The page's Right/Wrong buttons and live quality line in real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from serving.feedback.store import open_store
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
REPOSITORY = Path(__file__).resolve().parents[3] / "model_repository"
WAIT_S = 10
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[WebDriver, ServerThread]]:
    if not (REPOSITORY / "robust").is_dir():
        pytest.skip("shipped model_repository missing")
    settings = loopback_settings(REPOSITORY).replace(
        feedback_db=f"sqlite:///{tmp_path / 'feedback.db'}"
    )
    server = ServerThread(settings).start()
    driver = start_chromium(tmp_path / "profile")
    try:
        driver.set_window_size(1200, 1000)
        requested_urls(driver)  # forget Chromium's own start page
        console_errors(driver)
        driver.get(f"{server.http_url}/")
        WebDriverWait(driver, WAIT_S).until(lambda d: find(d, "model").is_enabled())
        yield driver, server
        urls = requested_urls(driver)
        assert f"{server.http_url}/v1/feedback" in urls
        assert not foreign_requests(urls, server.http_url)
        assert console_errors(driver) == []
    finally:
        driver.quit()
        server.stop()


def find(driver: WebDriver, name: str):
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def wait_for(driver: WebDriver, condition, message: str = "") -> None:
    WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: condition(), message)


def quality(driver: WebDriver, model: str) -> tuple[int, int] | None:
    """(rated, corrected) the live quality line shows for ``model``, None when absent."""
    rows = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="quality-{model}"]')
    if not rows:
        return None
    return int(rows[0].get_attribute("data-answers")), int(rows[0].get_attribute("data-corrected"))


def test_draw_correct_and_see_the_count_change(page: tuple[WebDriver, ServerThread]) -> None:
    driver, server = page
    assert find(driver, "feedback").get_attribute("hidden") is not None  # no answer yet
    wait_for(driver, lambda: find(driver, "quality").text == "No feedback yet.")
    draw(driver, find(driver, "pad"), SEVEN)
    wait_for(driver, lambda: find(driver, "prediction").text, "no answer")
    predicted = find(driver, "prediction").text
    model = find(driver, "meta-model").text
    wait_for(driver, lambda: find(driver, "feedback").is_displayed(), "no feedback buttons")
    # "Wrong, it is:" offers every label but the one answered.
    offered = [b.text for b in find(driver, "feedback-wrong").find_elements(By.TAG_NAME, "button")]
    assert predicted not in offered and len(offered) == 9
    chosen = "3" if predicted != "3" else "5"
    find(driver, "feedback-wrong").find_element(By.CSS_SELECTOR, f'[data-label="{chosen}"]').click()
    wait_for(
        driver,
        lambda: (
            f"stored as {chosen}, not {predicted}" in find(driver, "feedback-confirmation").text
        ),
        f"no confirmation: {find(driver, 'feedback-confirmation').text!r}",
    )
    wait_for(driver, lambda: quality(driver, model) == (1, 1), "live quality did not count it")
    assert "accuracy 0.0%" in find(driver, f"quality-{model}").text
    # "Right" on the same answer replaces the correction: still one rated, none corrected.
    find(driver, "feedback-right").click()
    wait_for(driver, lambda: "stored as right" in find(driver, "feedback-confirmation").text)
    wait_for(driver, lambda: quality(driver, model) == (1, 0), "live quality did not change")
    store = open_store(server.app.feedback.url)
    try:
        data = store.export()
    finally:
        store.close()
    assert list(data.labels) == [predicted] and list(data.verdicts) == ["correct"]
    assert data.images[0].max() > 0.5  # the drawn ink, as the model saw it
    # Clearing the pad takes the buttons away with the answer.
    find(driver, "clear").click()
    wait_for(driver, lambda: not find(driver, "feedback").is_displayed())
