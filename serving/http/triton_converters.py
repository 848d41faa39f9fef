"""Triton's model-configuration and statistics extensions as JSON (what tritonclient.http reads)."""

from __future__ import annotations

from typing import Any

from serving.types import BatchStat, DurationStat, ModelConfig, ModelStats, TensorSpec


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    # Triton lists dims without the batch dimension when max_batch_size > 0.
    return {"name": spec.name, "data_type": f"TYPE_{spec.datatype}", "dims": list(spec.shape[1:])}


def config_json(config: ModelConfig) -> dict[str, Any]:
    """A model's configuration in Triton's JSON form."""
    return {
        "name": config.name,
        "platform": config.platform,
        "backend": config.backend,
        "max_batch_size": config.max_batch_size,
        "input": [_tensor(s) for s in config.inputs],
        "output": [_tensor(s) for s in config.outputs],
        "dynamic_batching": {
            "max_queue_delay_microseconds": config.max_queue_delay_us,
            "preferred_batch_size": list(config.preferred_batch_sizes),
        },
        "instance_group": [
            {
                "name": f"{config.name}_0",
                "kind": config.instance_kind,
                "count": config.instance_count,
            }
        ],
        "version_policy": {"latest": {"num_versions": config.versions_kept}},
        "parameters": {
            "labels": {"string_value": ",".join(config.labels)},
            **({"overflow_session": {"string_value": "true"}} if config.overflow_session else {}),
            **{key: {"string_value": value} for key, value in config.serving},
        },
    }


def _duration(stat: DurationStat) -> dict[str, int]:
    return {"count": stat.count, "ns": stat.ns}


def _batch(stat: BatchStat) -> dict[str, Any]:
    zero = _duration(DurationStat())
    return {
        "batch_size": stat.batch_size,
        "compute_input": zero,
        "compute_infer": _duration(stat.compute_infer),
        "compute_output": zero,
    }


def stats_json(stats: list[ModelStats]) -> dict[str, Any]:
    """Inference statistics in Triton's JSON form."""
    zero = _duration(DurationStat())
    return {
        "model_stats": [
            {
                "name": s.name,
                "version": s.version,
                "last_inference": s.last_inference_ms,
                "inference_count": s.inference_count,
                "execution_count": s.execution_count,
                "inference_stats": {
                    "success": _duration(s.success),
                    "fail": _duration(s.fail),
                    "queue": _duration(s.queue),
                    "compute_input": zero,
                    "compute_infer": _duration(s.compute_infer),
                    "compute_output": zero,
                    "cache_hit": zero,
                    "cache_miss": zero,
                },
                "batch_stats": [_batch(b) for b in s.batch_stats],
            }
            for s in stats
        ]
    }
