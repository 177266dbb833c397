"""The meterworker command as a user runs it: exit statuses, messages, no tracebacks."""

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.support.mwproc import meterworker, write_config

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "collector.yaml"


def mw(*args, env=None, cwd=None):
    import os

    return subprocess.run(meterworker(*args), capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_validate_accepts_the_seed_example_unchanged():
    r = mw("validate", "-c", str(SEED), env={"PROMETHEUS_URL": "http://prom.example:9090",
                                             "KONNECT_SYSTEM_ACCESS_TOKEN": "kpat_should_not_show"})
    assert r.returncode == 0, r.stderr
    assert "node_cpu_usage" in r.stdout
    assert "https://us.api.konghq.com/v3/openmeter/events" in r.stdout
    assert "next ticks" in r.stdout
    assert "unexpanded variable $KONNECT_SYSTEM_ACCESS_TOKEN" in r.stderr
    # the seed's [1m] matches its once-a-minute schedule: no range warning
    assert "differs from the schedule's window" not in r.stderr


def test_validate_masks_secrets(tmp_path):
    cfg = yaml.safe_load(SEED.read_text())
    cfg["output"]["output"]["http_client"]["headers"]["Authorization"] = "Bearer ${TOKEN}"
    cfg["input"]["prometheus"]["basic_auth"] = {"username": "u", "password": "${PROM_PASSWORD}"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = mw("validate", "-c", str(path), env={"PROMETHEUS_URL": "http://u:pw123456@prom:9090",
                                             "TOKEN": "tok_abcdef123", "PROM_PASSWORD": "pp_987654"})
    assert r.returncode == 0, r.stderr
    for secret in ("tok_abcdef123", "pp_987654", "pw123456"):
        assert secret not in r.stdout + r.stderr
    assert "Bearer ****" in r.stdout


def test_validate_warns_when_the_range_differs_from_the_window(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "http://prom:9090", "http://sink",
                       [{"name": "q", "promql": "sum(increase(x[5m]))"}], schedule="@every 1m")
    r = mw("validate", "-c", str(cfg))
    assert r.returncode == 0
    assert "range [5m] differs from the schedule's window (1m)" in r.stderr
    assert "$__interval" in r.stderr


def _broken(base, edit):
    cfg = yaml.safe_load(SEED.read_text())
    edit(cfg)
    base.write_text(yaml.safe_dump(cfg))
    return base


def _set(path, value):
    def edit(cfg):
        node = cfg
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    return edit


BROKEN = {
    "unknown key": (_set(["input", "prometheus", "shedule"], "@every 1m"), "input.prometheus.shedule:"),
    "empty promql": (lambda c: c["input"]["prometheus"]["queries"][0]["query"].update(promql=" "),
                     "input.prometheus.queries[0].query.promql:"),
    "no queries": (_set(["input", "prometheus", "queries"], []), "input.prometheus.queries:"),
    "duplicate name": (lambda c: c["input"]["prometheus"]["queries"].append(c["input"]["prometheus"]["queries"][0]),
                       "input.prometheus.queries[1].query.name:"),
    "bad schedule": (_set(["input", "prometheus", "schedule"], "0 * * *"), "input.prometheus.schedule:"),
    "bad offset": (_set(["input", "prometheus", "query_offset"], "1 minute"), "input.prometheus.query_offset:"),
    "bad url": (_set(["input", "prometheus", "url"], "prom:9090"), "input.prometheus.url:"),
    "custom bloblang": (lambda c: c["pipeline"]["processors"][0].update(mapping="root = this"),
                        "pipeline.processors[0].mapping:"),
    "bad drop_on": (_set(["output", "output", "http_client", "drop_on"], [4000]),
                    "output.output.http_client.drop_on[0]:"),
    "negative retries": (_set(["output", "output", "http_client", "retries"], -1),
                         "output.output.http_client.retries:"),
    "multipart": (_set(["output", "output", "http_client", "batch_as_multipart"], True),
                  "output.output.http_client.batch_as_multipart:"),
    "no sink": (lambda c: c["output"].pop("output"), "output"),
    "bad batching count": (lambda c: c["output"]["output"]["http_client"]["batching"].update(count=0),
                           "output.output.http_client.batching.count:"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_validate_rejects_broken_config_naming_the_field(tmp_path, kind):
    edit, path = BROKEN[kind]
    r = mw("validate", "-c", str(_broken(tmp_path / "c.yaml", edit)), env={"PROMETHEUS_URL": "http://prom:9090"})
    assert r.returncode == 2, (kind, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors and errors[0].startswith(f"error: {path}"), (kind, r.stderr)


def test_validate_unset_variable_and_missing_file(tmp_path):
    r = mw("validate", "-c", str(SEED), env={"PROMETHEUS_URL": ""})
    r2 = subprocess.run(meterworker("validate", "-c", str(SEED)), capture_output=True, text=True,
                        env={k: v for k, v in __import__("os").environ.items() if k != "PROMETHEUS_URL"})
    assert r2.returncode == 2 and "input.prometheus.url: environment variable PROMETHEUS_URL is not set" in r2.stderr
    r3 = mw("validate", "-c", str(tmp_path / "nope.yaml"))
    assert r3.returncode == 2 and "Traceback" not in r3.stderr and "nope.yaml" in r3.stderr
    assert r.returncode == 2


def test_once_prints_the_events_prometheus_gives(tmp_path, prometheus, exporter, sink):
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url,
                       [{"name": "sessions", "promql": "mw_active_sessions"}], schedule="@every 1s", offset="0s")
    at = int(time.time()) + 1
    time.sleep(at + 1.5 - time.time())  # the scrape at or before `at` is in
    r = mw("once", "-c", str(cfg), "--at", str(at))
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert {e["subject"]: e["data"]["value"] for e in events} == exporter.sessions
    assert {e["time"] for e in events} == {time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at - 1))}
    assert not sink.requests

    sent = mw("once", "-c", str(cfg), "--at", str(at), "--send")
    assert sent.returncode == 0, sent.stderr
    assert sorted(sink.ids()) == sorted(e["id"] for e in events)


def test_once_reports_a_failing_query_and_exits_1(tmp_path, prometheus, sink):
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url,
                       [{"name": "broken", "promql": "sum(rate(x[1m])"},
                        {"name": "matrix", "promql": "mw_active_sessions[1m]"}], schedule="@every 10s")
    r = mw("once", "-c", str(cfg))
    assert r.returncode == 1
    assert "query broken" in r.stderr and "bad_data" in r.stderr
    assert "query matrix" in r.stderr and "range vector" in r.stderr
    assert "Traceback" not in r.stderr
