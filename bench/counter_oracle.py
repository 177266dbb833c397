"""What a counter grew per window, by issue 12's rule, from Prometheus' raw samples: the chaos run's oracle
for counter-mode queries. Plain httpx and arithmetic, nothing of meterworker's.

The rule, per series and window (s, e]: starting from the last sample at or before s (none: the series is
new and counts from 0), add v_i - v_{i-1} for each sample in the window when v_i >= v_{i-1}, else v_i
(a reset). A window without a sample of the series has no value for it. A staleness marker (NaN, which
VictoriaMetrics returns among raw samples) is not a sample.
"""

from __future__ import annotations

import json
import math

import httpx

Samples = list[tuple[int, float]]  # (milliseconds, value), oldest first


def series_key(metric: dict) -> str:
    """The labels meterworker puts in data.metric (the metric name dropped), as a sorted JSON object."""
    return json.dumps({k: v for k, v in metric.items() if k != "__name__"}, sort_keys=True)


def raw_samples(url: str, selector: str, since: float, at: float, timeout: float = 30.0) -> dict[str, Samples]:
    """Every raw sample of `selector` in [since, at], per series: one instant query of `selector[R]` at `at`."""
    reach = max(1, math.ceil(at - since))
    answer = httpx.post(f"{url}/api/v1/query", data={"query": f"{selector}[{reach}s]", "time": repr(float(at))},
                        timeout=timeout)
    answer.raise_for_status()
    body = answer.json()
    if body.get("status") != "success" or body["data"]["resultType"] != "matrix":
        raise RuntimeError(f"raw samples of {selector!r}: unexpected answer {str(body)[:300]}")
    return {series_key(s["metric"]): [(round(float(t) * 1000), float(v)) for t, v in s["values"]]
            for s in body["data"]["result"]}


def window_growth(samples: Samples, start: float, end: float) -> float | None:
    """The growth of one series over (start, end] (seconds), or None when no sample lies in it."""
    s_ms, e_ms = round(start * 1000), round(end * 1000)
    samples = [(t, v) for t, v in samples if not math.isnan(v)]
    prev = 0.0
    for t, v in samples:
        if t <= s_ms:
            prev = v
    total, seen = 0, False
    for t, v in samples:
        if s_ms < t <= e_ms:
            total += v - prev if v >= prev else v
            prev, seen = v, True
    return total if seen else None
