"""serving.event_loop: auto picks uvloop when installed; asyncio on request; clear refusal."""

import asyncio
import importlib.util

import pytest

from serving import event_loop
from serving.settings import load_settings


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_is_uvloop_when_installed_and_runs_on_it() -> None:
    assert importlib.util.find_spec("uvloop") is not None  # a declared dependency
    assert event_loop.resolve("auto") == "uvloop"
    assert event_loop.run(_loop_module(), "auto").startswith("uvloop")


def test_asyncio_runs_on_asyncios_own_loop() -> None:
    assert event_loop.run(_loop_module(), "asyncio").startswith("asyncio")


def test_uvloop_requested_but_missing_is_refused_with_the_way_out(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    assert event_loop.resolve("auto") == "asyncio"
    with pytest.raises(event_loop.EventLoopUnavailable, match="--event-loop asyncio"):
        event_loop.resolve("uvloop")


def test_setting_accepts_the_three_names_only() -> None:
    assert load_settings(["--event-loop", "asyncio"]).event_loop == "asyncio"
    assert load_settings([]).event_loop == "auto"
    with pytest.raises(ValueError, match="--event-loop='tornado'"):
        load_settings([], {"DIGITS_EVENT_LOOP": "tornado"})
    with pytest.raises(SystemExit):  # argparse: usage and exit 2
        load_settings(["--event-loop", "tornado"])
