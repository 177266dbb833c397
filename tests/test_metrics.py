"""meterworker's own metrics: a worker and beat started with --metrics-port, read from the endpoint
and through a real Prometheus scraping it."""

import time
import urllib.request

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from meterworker.delivery.deadletter import DeadLetters
from meterworker.schedule.state import State
from tests.support import PrometheusServer, free_port
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

NAME = "metrics"
SESSIONS = {"name": "sessions", "promql": "mw_active_sessions"}
BROKEN = {"name": "broken", "promql": "sum(mw_active_sessions"}
SKIPPED = [{"name": "nosubject", "promql": "sum(mw_active_sessions)"},
           {"name": "nan", "promql": "mw_active_sessions * 0 / 0"}]


def scrape(port: int) -> dict | None:
    """{(sample name, frozenset of labels): value}, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def start(tmp_path, what: str, cfg, port: int) -> Proc:
    proc = Proc(meterworker(what, "-c", str(cfg), "--metrics-port", str(port), "--metrics-addr", "127.0.0.1",
                            *(("--concurrency", "2") if what == "worker" else ())), tmp_path / f"{what}.log")
    wait_until(lambda: scrape(port), 60, f"{what}'s metrics endpoint", proc)
    return proc


def tick_with_data(prometheus, at_least_ago: float) -> int:
    """A tick of `@every 2s`, at least `at_least_ago` seconds ago, at which Prometheus has the sessions."""
    def ready():
        tick = int(time.time() - at_least_ago) // 2 * 2
        return tick if len(prometheus.query("mw_active_sessions", tick)["result"]) == 3 else None

    return wait_until(ready, 30, "Prometheus data for a tick")


def send_query(redis_url: str, query: str, tick: int) -> None:
    """What beat does for a tick: a query task on the query queue."""
    from celery import Celery

    with Celery("test-dispatch", broker=redis_url) as client:
        client.send_task("meterworker.query", args=(query, tick), queue="query")


@pytest.fixture
def config(tmp_path, prometheus, sink, redis_url):
    return write_config(tmp_path / "collector.yaml", prometheus.url, sink.url, [SESSIONS, BROKEN, *SKIPPED],
                        redis_url=redis_url, name=NAME, schedule="@every 2s", offset="0s", http={"retry_period": "1s"})


def test_worker_counts_ticks_retries_and_dead_letters_and_prometheus_scrapes_them(tmp_path, prometheus, sink, redis_url, config):
    port = free_port()
    worker = start(tmp_path, "worker", config, port)
    scraper = PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="1s").start()
    try:
        tick = tick_with_data(prometheus, at_least_ago=10)
        sent_at = time.time()
        send_query(redis_url, "sessions", tick)
        send_query(redis_url, "broken", tick)
        for q in SKIPPED:
            send_query(redis_url, q["name"], tick)
        sink.wait_for_events(3, timeout=30)
        got = wait_until(lambda: (s := scrape(port)) and value(s, "openmeter_events_sent_total", query="sessions") == 3
                         and value(s, "meterworker_query_errors_total", query="broken")
                         and value(s, "meterworker_events_produced_total", query="nan") == 0 and s,
                         30, "the sent and failed counters", worker)

        assert value(got, "meterworker_events_produced_total", query="sessions") == 3
        assert value(got, "meterworker_events_produced_total", query="broken") is None
        assert value(got, "meterworker_events_skipped_total", query="nosubject", reason="missing_subject") == 1
        assert value(got, "meterworker_events_skipped_total", query="nan", reason="non_finite") == 3
        requests = sink.requests
        assert value(got, "meterworker_http_responses_total", status="204") == len(requests)
        assert value(got, "meterworker_batch_size_count", query="sessions") == len(requests)
        assert value(got, "meterworker_batch_size_sum", query="sessions") == 3
        assert value(got, "meterworker_query_duration_seconds_count", query="sessions") == 1
        assert value(got, "meterworker_tick_lag_seconds_count", query="sessions", stage="run") == 1
        assert value(got, "meterworker_tick_lag_seconds_sum", query="sessions", stage="run") >= sent_at - tick
        assert value(got, "meterworker_query_errors_total", query="broken") >= 1
        assert value(got, "meterworker_retries_total", task="query", query="broken") >= 1
        # read from Redis at scrape time
        assert value(got, "meterworker_redis_up", collector=NAME) == 1
        assert value(got, "meterworker_last_completed_tick_timestamp_seconds", collector=NAME, query="sessions") == tick
        assert value(got, "meterworker_dead_letter_entries", collector=NAME) == 0
        assert value(got, "meterworker_beat_lock_held", collector=NAME) == 0

        sent = scraper.wait_for('openmeter_events_sent_total{query="sessions"} == 3', timeout=30)
        assert sent[0]["metric"]["instance"] == f"127.0.0.1:{port}"
        assert scraper.values("meterworker_events_produced_total", label="query") == {
            "sessions": 3.0, "nosubject": 0.0, "nan": 0.0}
        assert scraper.values('meterworker_http_responses_total{status="204"}', label="status") == {
            "204": float(len(requests))}

        # A 503, then success: one retry. Then 400 for everything: three events dead-lettered.
        sink.fail_next(1, status=503)
        send_query(redis_url, "sessions", tick + 2)
        got = wait_until(lambda: (s := scrape(port)) and value(s, "openmeter_events_sent_total", query="sessions") == 6
                         and s, 30, "three more events sent after a retry", worker)
        assert value(got, "meterworker_retries_total", task="send", query="sessions") == 1
        assert value(got, "meterworker_http_responses_total", status="503") == 1
        assert value(got, "meterworker_http_responses_total", status="204") == len(requests) + 1

        sink.fail_next(100, status=400)
        send_query(redis_url, "sessions", tick + 4)
        got = wait_until(lambda: (s := scrape(port))
                         and value(s, "meterworker_events_dead_lettered_total", query="sessions") == 3 and s,
                         30, "three events dead-lettered", worker)
        entries = DeadLetters(redis.Redis.from_url(redis_url), NAME).count()
        assert entries >= 1
        assert value(got, "meterworker_dead_letter_entries", collector=NAME) == entries
        assert value(got, "meterworker_http_responses_total", status="400") == len(sink.requests) - len(requests) - 2
        assert value(got, "openmeter_events_sent_total", query="sessions") == 6
    finally:
        scraper.close()
        assert worker.stop() == 0, worker.output()[-3000:]


def test_beat_serves_its_lock_dispatch_lag_and_pending_ticks(tmp_path, redis_url, config):
    port = free_port()
    beat = start(tmp_path, "beat", config, port)
    r = redis.Redis.from_url(redis_url)
    state = State(r, NAME)
    try:
        got = wait_until(lambda: (s := scrape(port)) and value(s, "meterworker_beat_active") == 1
                         and value(s, "meterworker_tick_lag_seconds_count", query="sessions", stage="dispatch")
                         and s, 30, "beat holding the lock and dispatching", beat)
        assert value(got, "meterworker_beat_lock_held", collector=NAME) == 1
        # No worker runs: dispatched ticks stay pending and wait in the query queue.
        before = len(state.query_status("sessions")["pending"]), r.llen("query")
        got = scrape(port)
        after = len(state.query_status("sessions")["pending"]), r.llen("query")
        assert before[0] <= value(got, "meterworker_pending_ticks", collector=NAME, query="sessions") <= after[0]
        assert before[1] <= value(got, "meterworker_queue_length", queue="query") <= after[1]
        assert after[0] >= 1
    finally:
        assert beat.stop() == 0, beat.output()[-3000:]
    assert r.get(f"meterworker:{NAME}:beat-lock") is None
