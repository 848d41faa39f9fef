"""Ratios and targets from measured rows; a row's client is part of its identity."""

from bench.report import analyse, format_tables
from bench.scenarios import DEFAULT_CLIENT, Scenario


def test_targets_from_ratios():
    scenarios = []
    for server, model, api, ips in [
        ("digits", "cnn", "v2", 3000.0),
        ("digits", "null", "v2", 4000.0),
        ("naive", "cnn", "v2", 1000.0),
    ]:
        s = Scenario(server, model, api, 1, 64)
        s.result = {"images_per_s": ips, "latency_ms": {"p99": 1.0}}
        scenarios.append(s)
    ratios, targets = analyse(scenarios, {"cnn": {64: 100.0}})
    assert ratios["cnn/v2/b1/c64 vs naive"] == 3.0
    assert ratios["cnn/v2/b1/c64 vs null"] == 0.75
    verdicts = {t.name: t.passed for t in targets}
    assert verdicts["cnn: b1 c64 V2 >= 2x naive"]
    assert verdicts["cnn: b1 c64 v2 >= 0.7x null-model ceiling"]
    # Anything not measured is reported as missed, never as passed.
    assert not verdicts["mlp100: b1 c64 V2 >= 2x naive"]


def test_other_clients_rows_are_kept_apart_and_not_judged():
    ours = Scenario("digits", "cnn", "v2", 1, 64)
    ours.result = {"images_per_s": 3000.0, "latency_ms": {"p99": 1.0}}
    other = Scenario("digits", "cnn", "v2", 1, 64, client="h2load")
    other.result = {"images_per_s": 9000.0, "latency_ms": {"p99": 1.0}}
    null = Scenario("digits", "null", "v2", 1, 64)
    null.result = {"images_per_s": 4000.0, "latency_ms": {"p99": 1.0}}
    assert ours.key == "digits/cnn/v2/b1/c64" and other.key == "digits/cnn/v2/b1/c64/h2load"
    assert ours.as_dict()["client"] == DEFAULT_CLIENT and other.as_dict()["client"] == "h2load"
    ratios, targets = analyse([ours, other, null], {})
    # The verdicts come from the default client's rows only.
    assert ratios["cnn/v2/b1/c64 vs null"] == 0.75
    table = format_tables([ours, other, null], {}, ratios, targets)
    assert "digits+h2load" in table


def test_rest_rows_get_ratios_but_no_targets():
    rows = []
    for model, api, ips in [("cnn", "rest-binary", 1500.0), ("null", "rest-binary", 2000.0)]:
        s = Scenario("digits", model, api, 1, 64)
        s.result = {"images_per_s": ips, "latency_ms": {"p99": 1.0}}
        rows.append(s)
    ratios, targets = analyse(rows, {})
    assert ratios["cnn/rest-binary/b1/c64 vs null"] == 0.75
    assert not any("rest" in t.name or "png" in t.name for t in targets)
    table = format_tables(rows, {}, ratios, targets)
    assert "rest-binary" in table and "0.75" in table


def test_issue_13_targets_use_one_client_on_both_sides():
    rows = []
    for server, model, batch, conc, client, ips in [
        ("digits", "cnn", 1, 64, "h2load", 5000.0),
        ("naive", "cnn", 1, 64, "h2load", 2000.0),
        ("naive", "cnn", 1, 64, DEFAULT_CLIENT, 1000.0),
        ("digits", "cnn", 64, 4, "h2load", 85.0),
    ]:
        s = Scenario(server, model, "v2", batch, conc, client=client)
        s.result = {"images_per_s": ips, "latency_ms": {"p99": 1.0}}
        rows.append(s)
    _ratios, targets = analyse(rows, {"cnn": {64: 100.0}})
    verdicts = {t.name: (t.value, t.passed) for t in targets}
    assert verdicts["cnn: b1 c64 V2 >= 2x naive [h2load]"] == (2.5, True)
    assert verdicts["cnn: b64 c4 v2 >= 0.8x in-process onnxruntime b64 [h2load]"] == (0.85, True)
    # No python-aio row for ours: that client's verdict is a miss, not borrowed from h2load.
    assert not verdicts["cnn: b1 c64 V2 >= 2x naive [python-aio]"][1]
