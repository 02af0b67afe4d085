"""Summaries of measured samples: median, percentiles, min and max."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Return the FRACTION percentile of SAMPLES by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def latency_summary(samples_seconds: Sequence[float]) -> dict[str, Any]:
    """Summarise latencies (seconds) as milliseconds: count, p50, p95, p99, min and max."""
    return {
        "count": len(samples_seconds),
        "p50_ms": percentile(samples_seconds, 0.50) * 1000,
        "p95_ms": percentile(samples_seconds, 0.95) * 1000,
        "p99_ms": percentile(samples_seconds, 0.99) * 1000,
        "min_ms": min(samples_seconds) * 1000,
        "max_ms": max(samples_seconds) * 1000,
    }


def over_runs(values: Sequence[float]) -> dict[str, float]:
    """Summarise one figure over repeated runs: median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
