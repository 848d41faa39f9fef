"""What the learning loop reads back from a running server: which version answers, which one
shadows it (the model's Triton config parameters), and the shadow's agreement counters
(the ``digits_shadow_*`` series on the metrics port)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from evaluation.client import ApiError, HttpApi

__all__ = ["ShadowCounts", "roles", "set_shadow", "shadow_counts", "wait_for_role"]

# The parameters GET /v2/models/{model}/config names the serving roles with.
SERVED = "served_version"
SHADOW = "shadow_version"
PREVIOUS = "previous_version"


def roles(api: HttpApi, model: str) -> dict[str, str]:
    """``served_version``, ``shadow_version``, ``previous_version`` where set."""
    answer = api.request("GET", f"/v2/models/{model}/config")
    if answer.status != 200:
        raise ApiError(f"GET /v2/models/{model}/config: HTTP {answer.status}: {answer.error}")
    parameters = answer.body.get("parameters", {})
    return {
        key: str(parameters[key]["string_value"])
        for key in (SERVED, SHADOW, PREVIOUS)
        if key in parameters
    }


def wait_for_role(
    api: HttpApi, model: str, role: str, version: str, timeout: float
) -> dict[str, str]:
    """Poll the config until ``role`` is ``version`` (the server reads serving.json on its
    repository poll); returns the roles then. Raises TimeoutError with what it saw last."""
    deadline = time.monotonic() + timeout
    while True:
        seen = roles(api, model)
        if seen.get(role) == version:
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{model}: {role} still not {version} after {timeout:g} s (server says {seen})"
            )
        time.sleep(0.2)


def set_shadow(api: HttpApi, model: str, version: str) -> dict[str, str | None]:
    """``POST /v2/repository/models/{model}/shadow {"version": ...}``; the policy applied."""
    body = json.dumps({"version": version}).encode()
    answer = api.request("POST", f"/v2/repository/models/{model}/shadow", body, "application/json")
    if answer.status != 200:
        raise ApiError(f"shadow {model}:{version} refused (HTTP {answer.status}): {answer.error}")
    return answer.body


@dataclass
class ShadowCounts:
    """The shadow's counters for one (model, served, candidate) pair."""

    agree: int = 0
    disagree: int = 0
    batches: Counter[str] = field(default_factory=Counter)  # outcome -> batches
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (served, candidate)

    @property
    def agreement(self) -> float:
        """Share of shadowed images where both versions gave the same label."""
        total = self.agree + self.disagree
        return self.agree / total if total else 0.0


def shadow_counts(metrics_url: str, model: str, served: str, candidate: str) -> ShadowCounts:
    """The ``digits_shadow_*`` counters of ``metrics_url`` for this model and pair."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{metrics_url.rstrip('/')}/metrics", timeout=30) as response:
        text = response.read().decode()
    counts = ShadowCounts()
    wanted = {"model": model, "served": served, "candidate": candidate}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if not sample.name.endswith("_total") or any(
                labels.get(k) != v for k, v in wanted.items()
            ):
                continue
            n = int(sample.value)
            if sample.name == "digits_shadow_answers_total":
                counts.agree += n if labels["outcome"] == "agree" else 0
                counts.disagree += n if labels["outcome"] == "disagree" else 0
            elif sample.name == "digits_shadow_batches_total":
                counts.batches[labels["outcome"]] += n
            elif sample.name == "digits_shadow_disagreements_total":
                counts.pairs[(labels["served_label"], labels["candidate_label"])] += n
    return counts
