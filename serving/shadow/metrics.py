"""The shadow candidate's series: agreement, disagreements by label pair, cost, feedback."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from serving.metrics import _LATENCY_BUCKETS as LATENCY_BUCKETS

# digits_shadow_batches outcomes: computed, or why the candidate skipped the batch.
COMPUTED = "computed"
DROPPED_QUEUED = "dropped_queued"  # requests waited for the answering version
DROPPED_BUSY = "dropped_busy"  # the candidate's previous batch still computes
NOT_SAMPLED = "not_sampled"  # outside --shadow-fraction
FAILED = "failed"
OUTCOMES = (COMPUTED, DROPPED_QUEUED, DROPPED_BUSY, NOT_SAMPLED, FAILED)


class ShadowMetrics:
    """Series labelled by model, the answering (``served``) and the ``candidate`` version."""

    def __init__(self, registry: CollectorRegistry) -> None:
        pair = ["model", "served", "candidate"]
        self.answers = Counter(
            "digits_shadow_answers",
            "Images the shadow candidate computed beside the answering version, by whether "
            "its label agreed (outcome=agree|disagree)",
            [*pair, "outcome"],
            registry=registry,
        )
        self.disagreements = Counter(
            "digits_shadow_disagreements",
            "Images where the candidate's label differs from the answer, by label pair",
            [*pair, "served_label", "candidate_label"],
            registry=registry,
        )
        self.batches = Counter(
            "digits_shadow_batches",
            "Batches of the answering version offered to the shadow candidate: computed, "
            "dropped under load (dropped_queued, dropped_busy), not_sampled, failed",
            [*pair, "outcome"],
            registry=registry,
        )
        self.compute_seconds = Histogram(
            "digits_shadow_compute_seconds",
            "session.run time of the candidate per shadow batch",
            pair,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.feedback = Counter(
            "digits_shadow_feedback",
            "Feedback on answers the candidate also computed: whether the served (who=served) "
            "and the candidate's (who=candidate) label was right (verdict=right|wrong)",
            [*pair, "who", "verdict"],
            registry=registry,
        )
