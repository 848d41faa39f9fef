"""Debian's headless Chromium under Selenium: start it, draw on a canvas, read what it logged."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No sandbox (containers run as root), no GPU, and nothing that phones home on its own
# (updates, sync, field trials), so every request in the log is one the page made.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here (a skip reason), or None when they can."""
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        return "Debian chromium + chromium-driver not installed (scripts/setup.sh --system)"
    return None


# A stroke is a polyline in pad coordinates: (0, 0) top left, (1, 1) bottom right.
Stroke = Sequence[tuple[float, float]]


def start_chromium(profile_dir: Path, width: int = 1200, height: int = 1000) -> webdriver.Chrome:
    """A headless Chromium with a throwaway profile that records console and network logs."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def draw(
    driver: webdriver.Chrome, element: WebElement, strokes: Iterable[Stroke], pointer: str = "mouse"
) -> None:
    """Draw polylines with real pointer input (press, moves, release per stroke).

    ``pointer`` is the W3C pointer type the browser reports: "mouse", "pen" or "touch".
    """
    rect = element.rect
    # move_to_element_with_offset measures from the element's centre, in whole CSS pixels.
    width, height = rect["width"], rect["height"]
    actions = ActionChains(driver, duration=0, devices=[PointerInput(pointer, pointer)])
    for stroke in strokes:
        points = [(round((x - 0.5) * width), round((y - 0.5) * height)) for x, y in stroke]
        actions.move_to_element_with_offset(element, *points[0]).click_and_hold()
        for point in points[1:]:
            actions.move_to_element_with_offset(element, *point)
        actions.release()
    actions.perform()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """SEVERE console entries logged since the last call (reading drains the log)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the browser requested since the last call, from the DevTools network log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def foreign_requests(urls: Iterable[str], origin: str) -> list[str]:
    """The URLs that are not served by ``origin`` (data: and blob: URLs are in-page)."""
    allowed = urlsplit(origin)
    return [
        url
        for url in urls
        if urlsplit(url).scheme not in ("data", "blob")
        and (urlsplit(url).scheme, urlsplit(url).netloc) != (allowed.scheme, allowed.netloc)
    ]
