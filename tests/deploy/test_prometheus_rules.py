"""The live-quality Prometheus rules: promtool checks them and runs their unit tests (each
alert fires and stays quiet where it should), they agree with what the server exports, and a
real Prometheus evaluates them on a live server's series."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request

import grpc
import pytest
import yaml

from clients.processes import find_binary, wait_for
from deploy.services import start_prometheus
from serving.api import digits_pb2_grpc
from serving.quality import CONFIDENCE_BUCKETS, LOW_CONFIDENCE
from tests.deploy.helpers import DEPLOY
from tests.deploy.test_configs import PROMTOOL, exported_series_names, needs_promtool
from tests.helpers.processes import prom_query
from tests.helpers.requests import random_images, typed_request

RULES = DEPLOY / "prometheus" / "rules"
RULE_FILES = sorted(RULES.glob("*.rules.yml"))
TEST_FILES = sorted(RULES.glob("*.test.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, timeout=120, cwd=RULES
    )


def rules() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_there_are_rules_and_unit_tests_for_them():
    assert RULE_FILES and TEST_FILES
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts == {"DigitsLiveAccuracyLow", "DigitsLowConfidenceDoubled"}
    tested = {
        case["alertname"]
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert tested == alerts


@needs_promtool
def test_promtool_checks_the_rules():
    result = promtool("check", "rules", *(p.name for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", *(p.name for p in TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_compose_config_loads_the_rules():
    result = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        assert path.name in result.stdout


def test_low_confidence_bound_is_the_servers_bucket():
    """The rules read the bucket le="<LOW_CONFIDENCE>": it must be a bucket the server has."""
    bounds = {m for rule in rules() for m in re.findall(r'le="([^"]+)"', rule["expr"])}
    assert bounds == {str(LOW_CONFIDENCE)}
    assert LOW_CONFIDENCE in CONFIDENCE_BUCKETS


def test_rules_read_only_series_the_server_exports():
    used = {m for rule in rules() for m in re.findall(r"(?<![:\w])digits_\w+", rule["expr"])}
    exported = exported_series_names()
    assert used - exported <= {"digits_feedback_total"}, used - exported
    if "digits_feedback_total" not in exported:
        pytest.skip("digits_feedback_total comes with the feedback API (issue 22 part 1)")


def test_dashboard_shows_live_quality_from_series_and_rules_that_exist():
    from tests.deploy.helpers import dashboard_exprs

    exprs = dashboard_exprs()
    used_rules = {m for expr in exprs for m in re.findall(r"\b\w+:digits_\w+:\w+", expr)}
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    assert used_rules and used_rules <= recorded, used_rules - recorded
    assert "model:digits_live_accuracy:ratio1h" in used_rules
    used = {m for expr in exprs for m in re.findall(r"(?<![:\w])digits_\w+", expr)}
    assert {"digits_prediction_confidence_bucket", "digits_predictions_total"} <= used


@pytest.mark.skipif(find_binary("prometheus") is None, reason="Debian prometheus not installed")
def test_a_real_prometheus_records_the_rules_from_a_live_server(make_server, tmp_path):
    """Debian's Prometheus scrapes a live server and evaluates the shipped rules on it."""
    server = make_server(metrics_port=0)
    process, url = start_prometheus(tmp_path, [f"127.0.0.1:{server.app.metrics_port}"], 0.5)
    with process:
        conf = tmp_path / "prometheus.yml"
        conf.write_text(conf.read_text() + f"rule_files:\n  - {RULES}/*.rules.yml\n")
        os.kill(process.pid, signal.SIGHUP)  # reload with the rules
        with grpc.insecure_channel(server.address) as channel:
            typed = digits_pb2_grpc.DigitClassifierStub(channel)
            typed.Classify(typed_request(random_images(1)))
            # increase() counts growth between scrapes: send the rest once one was scraped.
            wait_for(
                "the first answer scraped",
                lambda: prom_query(url, "digits_prediction_confidence_count"),
                30,
            )
            for seed in range(10):
                typed.Classify(typed_request(random_images(3, seed=seed)))

        def recorded() -> dict[str, float]:
            return {
                name: float(result[0]["value"][1])
                for name in (
                    "model:digits_predictions:increase1h",
                    "model:digits_low_confidence:ratio1h",
                )
                if (result := prom_query(url, f'{name}{{model="cnn"}}'))
            }

        wait_for("both recording rules", lambda: len(recorded()) == 2, 30)
        values = recorded()
        # The tiny linear cnn is unsure of random images: every answer is low-confidence.
        assert values["model:digits_predictions:increase1h"] > 0
        assert values["model:digits_low_confidence:ratio1h"] == 1
        with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        loaded = {rule["name"]: rule["health"] for g in groups for rule in g["rules"]}
        assert len(loaded) == len(rules()) and set(loaded.values()) == {"ok"}, loaded
