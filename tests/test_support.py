"""The test parts themselves work: Prometheus sees the exporter's known numbers,
the sink accepts and refuses what OpenMeter accepts and refuses."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import urllib.request

import httpx
import pytest
import redis

from tests.support import CounterExporter, OpenMeterSink, PrometheusServer
from tests.support.prometheus import find_prometheus

BATCH = "application/cloudevents-batch+json"
SINGLE = "application/cloudevents+json"


def event(i: int | str = 1, **overrides) -> dict:
    ev = {
        "specversion": "1.0",
        "id": f"ev-{i}",
        "source": "prometheus",
        "type": "requests",
        "subject": "acme",
        "time": "2024-05-01T12:00:00Z",
        "data": {"value": "1.5", "metric": {"customer": "acme"}},
    }
    ev.update(overrides)
    return {k: v for k, v in ev.items() if v is not ...}


def post(sink: OpenMeterSink, body, content_type: str = BATCH, path: str = "/api/v1/events", **kw) -> httpx.Response:
    headers = {"Content-Type": content_type, **kw.pop("headers", {})}
    content = body if isinstance(body, (bytes, str)) else httpx.Request("POST", "/", json=body).content
    return httpx.post(sink.url + path, content=content, headers=headers, timeout=kw.pop("timeout", 5), **kw)


def assert_problem(resp: httpx.Response, status: int, *in_detail: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["type"] == "about:blank"
    assert problem["status"] == status
    for text in in_detail:
        assert text in problem["detail"], problem
    return problem


# -- Prometheus + exporter -----------------------------------------------------


def test_prometheus_returns_the_exporters_gauges_exactly(prometheus, exporter):
    got = prometheus.values("mw_active_sessions")
    assert got == exporter.sessions
    series = prometheus.query("mw_active_sessions")["result"]
    assert {s["metric"]["customer"] for s in series} == set(exporter.customers)
    assert {s["metric"]["job"] for s in series} == {"mw"}


def test_prometheus_counter_rate_is_the_known_rate(prometheus, exporter):
    # rate() over a window the series does not fill yet is extrapolated low: wait until every series has
    # samples reaching back past the window. A sample's value is read when the exporter serves it, its time is
    # when the scrape began; 15s (not a few) keeps that lag on a loaded machine far inside the tolerance.
    time.sleep(max(0.0, prometheus.history_since("mw_requests_total") + 17 - time.time()))
    rates = prometheus.values("rate(mw_requests_total[15s])")
    assert rates.keys() == exporter.rates.keys()
    for customer, rate in exporter.rates.items():
        assert rates[customer] == pytest.approx(rate, rel=0.05), customer


def test_prometheus_evaluates_at_the_given_time(prometheus, exporter):
    # Before the exporter started there is nothing.
    assert prometheus.query("mw_requests_total", time=exporter.started_at - 60)["result"] == []
    # At a past time t, the counter reads the last sample before t: within one
    # scrape interval (1s) of rate * (t - start).
    while exporter.elapsed() < 4:
        time.sleep(0.2)
    t = time.time() - 1.0
    got = prometheus.values("mw_requests_total", time=t)
    for customer, rate in exporter.rates.items():
        expected = exporter.counter_value(customer, at=t)
        assert expected - rate * 1.6 <= got[customer] <= expected + rate * 0.1, customer


def test_exporter_burst_series_reach_prometheus(prometheus, exporter):
    exporter.set_extra_series(3)
    try:
        text = urllib.request.urlopen(exporter.url, timeout=5).read().decode()
        assert sum(line.startswith("mw_burst_total{") for line in text.splitlines()) == 3
        assert 'mw_burst_total{series="2",instance="burst-2"}' in text
        prometheus.wait_for("count(mw_burst_total) == 3", timeout=10)
    finally:
        exporter.set_extra_series(0)


def test_exporter_output_passes_promtool_lint(exporter):
    promtool = os.path.join(os.path.dirname(find_prometheus()), "promtool")
    if not os.access(promtool, os.X_OK):
        promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed next to prometheus")
    exporter.set_extra_series(2)
    try:
        text = exporter.render()
    finally:
        exporter.set_extra_series(0)
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_restarts_on_the_same_data(exporter):
    with PrometheusServer([exporter.host_port]) as prom:
        prom.wait_for("mw_active_sessions")
        seen_at = time.time()
        url = prom.url
        prom.stop()
        assert not prom.running
        prom.start()
        assert prom.url == url
        # Data from before the restart is still there.
        assert prom.values("mw_active_sessions", time=seen_at) == exporter.sessions


def test_missing_prometheus_binary_says_how_to_get_it(tmp_path):
    with pytest.raises(RuntimeError, match="bin/test"):
        PrometheusServer(["127.0.0.1:1"], binary=str(tmp_path / "no-prometheus"))


# -- Redis ----------------------------------------------------------------------


def test_redis_url_is_an_empty_dedicated_db(redis_url):
    from tests.conftest import TEST_DB

    assert redis_url.endswith(f"/{TEST_DB}")
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("mw:test", "1")
    assert client.get("mw:test") == b"1"


# -- sink ---------------------------------------------------------------------------


def test_sink_accepts_a_valid_batch(sink):
    batch = [event(1), event(2, subject="globex")]
    resp = post(sink, batch, headers={"Authorization": "Bearer whatever"})
    assert resp.status_code == 204
    assert resp.content == b""
    assert sink.events == batch
    assert sink.ids() == ["ev-1", "ev-2"]
    (req,) = sink.requests
    assert (req.method, req.path, req.status) == ("POST", "/api/v1/events", 204)
    assert req.headers["Content-Type"] == BATCH
    assert req["headers"]["authorization"] == "Bearer whatever"
    assert req.events == batch


@pytest.mark.parametrize(
    "content_type, path, body",
    [
        (SINGLE, "/api/v1/events", event(7)),
        (SINGLE + "; charset=utf-8", "/v3/openmeter/events", event(7)),
        ("application/json", "/api/v1/events", event(7)),
        ("application/json", "/v3/openmeter/events", [event(7)]),
    ],
)
def test_sink_accepts_single_events_and_konnect_shapes(sink, content_type, path, body):
    assert post(sink, body, content_type, path).status_code == 204
    assert sink.ids() == ["ev-7"]


@pytest.mark.parametrize(
    "bad, detail",
    [
        (event(2, subject=...), "'subject' is missing"),
        (event(2, subject=""), "'subject' is invalid"),
        (event(2, source=None), "'source' is invalid"),
        (event(2, specversion="0.3"), "specversion"),
        (event(2, time="2024-05-01 12:00:00"), "RFC 3339"),
        (event(2, time="2024-13-01T12:00:00Z"), "RFC 3339"),
        (event(2, data=[1, 2]), "'data' must be a JSON object"),
        (event(2, data=None), "'data' must be a JSON object"),
    ],
)
def test_sink_refuses_an_invalid_event_and_records_nothing_of_the_batch(sink, bad, detail):
    resp = post(sink, [event(1), bad])
    problem = assert_problem(resp, 400, detail, "'ev-2'")
    assert problem["title"] == "Bad Request"
    assert sink.events == [] and sink.ids() == []
    assert sink.requests[-1].status == 400


def test_sink_names_an_event_without_id_by_index(sink):
    assert_problem(post(sink, [event(1), event(2, id=...)]), 400, "index 1 (no id)", "'id' is missing")
    assert sink.events == []


@pytest.mark.parametrize(
    "content_type, body, detail",
    [
        ("text/plain", [event(1)], "unsupported Content-Type 'text/plain'"),
        ("", [event(1)], "unsupported Content-Type"),
        (BATCH, b'[{"id": "ev-1",', "not valid JSON"),
        (BATCH, event(1), "JSON array"),
        (SINGLE, [event(1)], "one event object"),
        ("application/json", b'"just a string"', "got str"),
    ],
)
def test_sink_refuses_wrong_content_type_and_bad_json(sink, content_type, body, detail):
    assert_problem(post(sink, body, content_type), 400, detail)
    assert sink.events == []


def test_sink_unknown_path_and_method(sink):
    assert_problem(post(sink, [event(1)], path="/api/v2/events"), 404)
    resp = httpx.get(sink.events_url)
    assert resp.status_code == 405
    assert sink.events == [] and len(sink.requests) == 2


def test_fail_next_gives_503_with_retry_after_then_recovers(sink):
    sink.fail_next(2, retry_after=3)
    for _ in range(2):
        resp = post(sink, [event(1)])
        assert_problem(resp, 503)
        assert resp.headers["retry-after"] == "3"
    assert sink.events == []
    assert post(sink, [event(1)]).status_code == 204
    assert sink.ids() == ["ev-1"]
    assert [r.status for r in sink.requests] == [503, 503, 204]


def test_fail_for_fails_everything_for_a_while(sink):
    sink.fail_for(0.5, status=500)
    assert_problem(post(sink, [event(1)]), 500)
    assert "retry-after" not in post(sink, [event(1)]).headers
    time.sleep(0.6)
    assert post(sink, [event(1)]).status_code == 204
    assert sink.ids() == ["ev-1"]


def test_hang_for_delays_and_then_handles_the_request(sink):
    t0 = time.monotonic()
    sink.hang_for(0.6)
    with pytest.raises(httpx.ReadTimeout):
        post(sink, [event(1)], timeout=0.2)
    assert post(sink, [event(2)]).status_code == 204
    assert time.monotonic() - t0 >= 0.55
    # The request the client gave up on was still ingested, as a slow server would.
    sink.wait_for_events(2, timeout=2)
    assert sorted(sink.ids()) == ["ev-1", "ev-2"]


def test_reject_ids_and_clear_faults(sink):
    sink.reject_ids(["ev-2"], "event is too old")
    assert_problem(post(sink, [event(1), event(2)]), 400, "'ev-2'", "event is too old")
    assert sink.events == []
    assert post(sink, [event(1)]).status_code == 204
    sink.clear_faults()
    assert post(sink, [event(2)]).status_code == 204
    assert sink.ids() == ["ev-1", "ev-2"]


def test_token_is_checked():
    with OpenMeterSink(token="s3cret") as sink:
        assert_problem(post(sink, [event(1)]), 401)
        assert_problem(post(sink, [event(1)], headers={"Authorization": "Bearer wrong"}), 401)
        assert post(sink, [event(1)], headers={"Authorization": "Bearer s3cret"}).status_code == 204
        assert sink.ids() == ["ev-1"]


def test_duplicates_and_reset(sink):
    post(sink, [event(1), event(2)])
    post(sink, [event(2), event(3)])
    assert sink.ids() == ["ev-1", "ev-2", "ev-2", "ev-3"]
    assert sink.duplicates() == ["ev-2"]
    sink.reset()
    assert sink.events == [] and sink.requests == [] and sink.duplicates() == []


def test_wait_for_events(sink):
    threading.Timer(0.3, post, args=(sink, [event(1), event(2)])).start()
    assert [e["id"] for e in sink.wait_for_events(2, timeout=5)] == ["ev-1", "ev-2"]
    with pytest.raises(TimeoutError, match="2 of 3 events"):
        sink.wait_for_events(3, timeout=0.3)
