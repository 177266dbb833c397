"""The chaos run, short: 50 seconds of ticks with a worker, a pool process, the active beat and Redis killed or
restarted, and Prometheus stopped; every window from the first to the last tick is billed once and with
Prometheus' value, and the counter-mode query's windows add up per series to the raw samples' growth.
The full run (10 minutes, every fault) is `python bench/chaos.py --duration 600 --seed N`; see
docs/reliability.md."""

import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent

FAULTS = "kill-query,kill-send,kill-beat,redis-restart,prometheus-down"


def test_a_short_chaos_run_bills_every_window_exactly_once(tmp_path):
    result = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--duration", "50", "--seed", "11",
         "--faults", FAULTS, "--outage", "10", "--drain-timeout", "60",
         "--workdir", str(tmp_path / "run"), "--json", str(result)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    report = run.stdout[-6000:] + run.stderr[-3000:]
    assert result.exists(), report
    res = json.loads(result.read_text())
    assert run.returncode == 0 and res["ok"], report
    totals = res["totals"]
    assert totals["expected"] > 0 and totals["delivered"] == totals["expected"], report
    assert totals.get("missing", 0) == 0 and totals.get("mismatched", 0) == 0 and totals.get("unexpected", 0) == 0
    assert res["duplicates"]["unexplained"] == 0 and res["dead_letters"]["events"] == 0, report
    assert all(f["injected"] for f in res["faults"]) and len(res["faults"]) == 5, report
    # counter mode: per series, the delivered windows add up to the raw samples' growth, the outage included
    calls = res["counter_totals"]["calls"]
    assert len(calls) == 5 and all(row["raw_growth"] > 0 and row["delivered"] == row["raw_growth"]
                                   for row in calls.values()), report
    assert res["per_query"]["calls"]["delivered"] == res["per_query"]["calls"]["expected"] > 0, report


def test_the_chaos_oracle_computes_windows_on_its_own():
    from bench.chaos import EveryTicks

    oracle = EveryTicks.parse("@every 5s", "3s")
    assert oracle.ticks(1000, 1012) == [1000, 1005, 1010]
    assert (oracle.first_after(1000), oracle.first_after(1004.9), oracle.last_at_or_before(1009.9)) == (1005, 1005, 1005)
    assert (oracle.window_start(1005), oracle.evaluated_at(1005)) == (997, 1002)
    assert oracle.promql("increase(x[$__interval]) / ${__interval}") == "increase(x[5s]) / 5s"
    assert EveryTicks.parse("@every 1m30s", "500ms") == EveryTicks(90, 0.5)
    source = (ROOT / "bench" / "chaos.py").read_text()
    assert "meterworker.schedule" not in source and "meterworker.config" not in source
