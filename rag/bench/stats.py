"""Latency summaries: the few numbers the report shows for a list of timings."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed, no smoothing."""
    xs = sorted(values)
    if not xs:
        return None
    rank = max(1, math.ceil(q / 100 * len(xs)))
    return xs[min(rank, len(xs)) - 1]


def summary(seconds: list[float]) -> dict[str, Any]:
    """n, p50, p95 and max in milliseconds (rounded: the noise floor here is ~0.1 ms)."""

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)

    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p95_ms": ms(percentile(seconds, 95)),
        "max_ms": ms(max(seconds) if seconds else None),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def ratio(ours: float | None, base: float | None) -> float | None:
    """ours / baseline, or None when either side is missing."""
    if ours is None or not base:
        return None
    return round(ours / base, 3)
