"""serving/logs.py: text and JSON lines, with the request context where there is one."""

import io
import json
import logging
import os

import pytest

from serving.logs import log_access, make_handler
from serving.request_context import RequestInfo, current_request


@pytest.fixture
def emit():
    """Log through a real handler of the given format; returns the lines written."""
    out = io.StringIO()
    parent = logging.getLogger("serving")  # where serving.access lines arrive too
    level = parent.level
    parent.setLevel(logging.DEBUG)
    handlers = []

    def run(log_format: str, fn, show_pid: bool = False) -> list[str]:
        handler = make_handler(log_format, out, show_pid)
        handlers.append(handler)
        parent.addHandler(handler)
        fn(logging.getLogger("serving.test_logs"))
        parent.removeHandler(handler)
        return out.getvalue().splitlines()

    yield run
    for handler in handlers:
        parent.removeHandler(handler)
    parent.setLevel(level)


def test_json_outside_a_request_has_the_base_fields(emit):
    (line,) = emit("json", lambda log: log.info("hello %s", "world"))
    record = json.loads(line)
    assert record["message"] == "hello world" and record["level"] == "INFO"
    assert record["logger"] == "serving.test_logs"
    assert record["time"].endswith("Z") and "T" in record["time"]
    assert record["pid"] == os.getpid()
    assert "request_id" not in record


def test_json_inside_a_request_carries_its_fields_and_the_traceback(emit):
    info = RequestInfo("rid-1", api="v2", method="ModelInfer")
    info.model, info.version = "cnn", "3"
    token = current_request.set(info)
    try:

        def fail(log: logging.Logger) -> None:
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                log.exception("failed")
            info.finish("INTERNAL")
            log_access(info)

        first, access = (json.loads(line) for line in emit("json", fail))
    finally:
        current_request.reset(token)
    assert first["request_id"] == "rid-1" and first["model"] == "cnn" and first["version"] == "3"
    assert "RuntimeError: boom" in first["exception"] and "duration_ms" not in first
    assert access["logger"] == "serving.access" and access["code"] == "INTERNAL"
    assert access["method"] == "ModelInfer" and access["duration_ms"] >= 0


def test_text_keeps_todays_format(emit):
    token = current_request.set(RequestInfo("rid-2"))
    try:
        (line,) = emit("text", lambda log: log.warning("careful"))
    finally:
        current_request.reset(token)
    assert line.endswith(" WARNING serving.test_logs [rid-2]: careful")


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="expected one of"):
        make_handler("xml")


def test_text_lines_name_their_process_only_when_asked(emit):
    (plain,) = emit("text", lambda log: log.info("one"))
    assert "pid=" not in plain
    lines = emit("text", lambda log: log.info("two"), show_pid=True)
    assert lines[-1].endswith("two") and f"pid={os.getpid()} [-]: two" in lines[-1]
