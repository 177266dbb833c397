"""Hostile input through the real CLI and real workers: no secret in any form, no traceback, no hang, nothing
stuck or lost without a reason (issue 13). Fake servers here answer as a broken or hostile Prometheus or
sink would; the oracles are what a user reads: the command's output, the sink's requests, `status`, `dlq`."""

import base64
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import yaml

from tests.support import OpenMeterSink
from tests.support.mwproc import Proc, meterworker, wait_until, write_config
from tests.test_delivery_workers import TOKEN as SEND_SIDE_TOKEN, SendSide, tick_of

TOKEN = "hx-t0ken-9f2c"
PASSWORD = "pa55-w0rd"


class FakeServer:
    """An HTTP server answering every request with `answer(handler, body) -> (status, bytes)` or writing it itself
    (`answer` returns None); every request's (method, path, headers, body) is kept."""

    def __init__(self, answer):
        self.answer, self.requests = answer, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                got = outer.answer(self, body)
                if got is not None:
                    status, data = got
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    made = []

    def make(answer):
        made.append(FakeServer(answer))
        return made[-1]

    yield make
    for s in made:
        s.close()


def vector(*series) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1795860000, value]} for labels, value in series]}},
        separators=(",", ":")).encode()


def run(*args, env=None, timeout=60, cwd=None):
    return subprocess.run(meterworker(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd or "/tmp",
                          env={**os.environ, **(env or {})})


def config(tmp_path, prometheus_url, sink_url="http://127.0.0.1:9", name="collector.yaml", **kwargs):
    return str(write_config(tmp_path / name, prometheus_url, sink_url, [{"name": "q", "promql": "up"}], **kwargs))


def no_traceback(r):
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr


# --- 1. secrets in every derived form ----------------------------------------------------------------


def test_a_token_with_a_trailing_newline_is_stripped_with_a_warning_and_never_shown(tmp_path, fake):
    """A token copied from a file or a Kubernetes Secret ends in a line break; one inside a value is refused.
    A Prometheus echoing its Authorization header (basic auth: base64 of user:password) shows it masked."""
    prom = fake(lambda h, body: (400, json.dumps({"status": "error", "errorType": "bad_data",
                                                  "error": f"who is {h.headers.get('Authorization')}?"}).encode()))
    sink_headers = {"Authorization": f"Bearer {TOKEN}\n"}
    cfg = config(tmp_path, prom.url, http={"headers": sink_headers},
                 extra={"input": {"prometheus": {**_prom_section(prom.url),
                                                 "basic_auth": {"username": "reader", "password": PASSWORD}}}})
    basic = base64.b64encode(f"reader:{PASSWORD}".encode()).decode()

    v = run("validate", "-c", cfg)
    assert v.returncode == 0, v.stderr
    assert "output.http_client.headers.Authorization: a line break around the value removed" in v.stderr
    o = run("once", "-c", cfg, "--loglevel", "DEBUG")
    assert o.returncode == 1
    assert "Prometheus bad_data (HTTP 400): who is Basic ****?" in o.stderr
    text = v.stdout + v.stderr + o.stdout + o.stderr
    assert TOKEN not in text and PASSWORD not in text and basic not in text
    no_traceback(o)

    inside = yaml.safe_load(open(cfg))
    inside["output"]["http_client"]["headers"]["Authorization"] = f"Bearer {TOKEN}\nX-Evil: 1"
    (tmp_path / "inside.yaml").write_text(yaml.safe_dump(inside))
    for args in (["validate"], ["once", "--send"]):
        r = run(*args, "-c", str(tmp_path / "inside.yaml"))
        assert r.returncode == 2, r.stderr
        assert "error: output.http_client.headers: the value of header 'Authorization' holds a line break" in r.stderr
        assert TOKEN not in r.stdout + r.stderr
        no_traceback(r)


def _prom_section(url):
    return {"url": url, "schedule": "@every 2s", "query_offset": "2s", "queries": [{"query": {"name": "q",
                                                                                              "promql": "up"}}]}


def test_a_token_in_the_prometheus_url_query_string_is_kept_there_and_not_logged(tmp_path, fake):
    prom = fake(lambda h, body: (200, vector(({"instance": "a"}, "1"))))
    cfg = config(tmp_path, f"{prom.url}/prom?access_token={TOKEN}")
    o = run("once", "-c", cfg, "--loglevel", "INFO")
    assert o.returncode == 0, o.stderr
    [(method, path, _, body)] = prom.requests
    assert (method, path) == ("POST", f"/prom/api/v1/query?access_token={TOKEN}")  # the API path first
    assert parse_qs(body.decode())["query"] == ["up"]
    assert "HTTP Request: POST" in o.stderr and "access_token=****" in o.stderr  # httpx's line, masked
    assert TOKEN not in o.stderr


# --- 2. a task that raises something unforeseen; 6. repeated series ----------------------------------


def test_non_numeric_values_and_repeated_series_are_skipped_with_a_reason_and_the_rest_billed(
        tmp_path, fake, redis_url):
    """Through real workers: the valid series of the tick are billed, once; the others are counted and
    logged as skipped, and the "N events queued" line counts what was queued."""
    answer = vector(({"instance": "a"}, "1"), ({"instance": "b"}, "abc"), ({"instance": "c"}, None),
                    ({"instance": "d"}, "4"), ({"instance": "a"}, "7"), ({"instance": "e"}, "5"))
    prom = fake(lambda h, body: (200, answer))
    with OpenMeterSink() as sink:
        cfg = config(tmp_path, prom.url, sink.url, schedule="@every 1h", redis_url=redis_url,
                     http={"batching": {"count": 100, "period": "200ms"}})
        worker = Proc(meterworker("worker", "-c", cfg, "-Q", "query,send", "--concurrency", "1", "--loglevel",
                                  "INFO"), tmp_path / "worker.log", cwd=tmp_path)
        try:
            wait_until(lambda: "sweeper started" in worker.output(), 60, "the worker to start", worker)
            tick = 1795860000
            r = subprocess.run(
                [sys.executable, "-c",
                 "from meterworker.app import app; from meterworker.keys import QUERY_TASK;"
                 f"app.send_task(QUERY_TASK, args=['q', {tick}], queue='query')"],
                env={**os.environ, "METERWORKER_CONFIG": cfg}, cwd=tmp_path, capture_output=True, text=True,
                timeout=60)
            assert r.returncode == 0, r.stderr
            sink.wait_for_events(3, timeout=30)
            wait_until(lambda: "events queued" in worker.output(), 30, "the tick to complete", worker)
            time.sleep(1)
        finally:
            worker.stop()
        log = worker.output()
        assert sorted((e["subject"], e["data"]["value"]) for e in sink.events) == [("a", 1.0), ("d", 4.0),
                                                                                   ("e", 5.0)]
        assert "3 events queued" in log
        assert "2 series with a value that is not a number not sent" in log
        assert "1 series repeat the labels of another series of the answer" in log
        assert "Traceback" not in log
        status = run("status", "-c", cfg)
        assert "pending: 0" in status.stdout and "FAILING" not in status.stdout, status.stdout


class _Unusable:
    url = "https://127.0.0.1:9"  # https: the sender needs a TLS context, which the broken CA bundle prevents


def test_a_send_task_that_cannot_even_build_its_sender_dead_letters_the_events_with_the_reason(tmp_path, redis_url):
    """SSL_CERT_FILE naming a file that holds no certificate: every send task fails before its first request.
    The events are retried and then dead-lettered with that reason, not left pending with no word."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    side = SendSide(tmp_path, _Unusable(), redis_url, {"batching": {"count": 5, "period": "200ms"}, "retries": 1,
                                                        "retry_period": "200ms", "max_retry_backoff": "200ms"})
    side.env["SSL_CERT_FILE"] = str(bundle)
    try:
        worker = side.worker("send")
        side.enqueue(tick_of(queries=1, series=5))
        wait_until(lambda: " q0 " in side.dlq("list").stdout, 30, "the dead-letter entry", worker)
        listed = side.dlq("list").stdout
        [entry_id] = [line.split()[0] for line in listed.splitlines()[1:-1]]
        entry = json.loads(side.dlq("show", entry_id).stdout)
        assert len(entry["events"]) == 5 and entry["attempts"] == 2, entry
        assert "SSLError" in entry["reason"] and "no certificate" in entry["reason"].lower(), entry["reason"]
        status = run("status", "-c", str(side.cfg), env=side.env)
        assert "outbox: 0 events pending" in status.stdout, status.stdout
        assert SEND_SIDE_TOKEN not in worker.output() + side.redis_dump()
    finally:
        side.stop()


@pytest.mark.parametrize("bundle_text", ["not a certificate\n", None], ids=["garbage", "missing"])
def test_once_send_and_backfill_inline_with_a_ca_bundle_they_cannot_use_end_in_one_line(tmp_path, fake, redis_url,
                                                                                         bundle_text):
    bundle = tmp_path / "ca.pem"
    if bundle_text is not None:
        bundle.write_text(bundle_text)
    prom = fake(lambda h, body: (200, vector(({"instance": "a"}, "1"))))
    cfg = config(tmp_path, prom.url, _Unusable.url, redis_url=redis_url)
    for args in (["once", "--send"], ["backfill", "--inline", "--from", "now-5s", "--to", "now"]):
        r = run(*args, "-c", cfg, env={"SSL_CERT_FILE": str(bundle)})
        assert r.returncode == 1, (args, r.stderr)
        no_traceback(r)
        [line] = [line for line in r.stderr.splitlines() if str(bundle) in line]
        assert "cannot set up" in line and ("no certificate" if bundle_text else "No such file") in line, line


# --- 3. deadlines ------------------------------------------------------------------------------------


def _trickle(h, body, every=0.4):
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    try:
        for _ in range(1000):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(every)
    except OSError:
        pass


def test_a_trickling_prometheus_or_sink_is_given_up_on_at_the_timeout(tmp_path, fake):
    prom = fake(_trickle)
    cfg = config(tmp_path, prom.url, extra={"input": {"prometheus": {**_prom_section(prom.url), "timeout": "1s"}}})
    start = time.monotonic()
    o = run("once", "-c", cfg)
    took = time.monotonic() - start
    assert o.returncode == 1
    assert "timed out after 1s querying" in o.stderr, o.stderr
    assert took < 8, took  # a byte every 0.4s of a 1000-byte answer would take 400s

    good = fake(lambda h, body: (200, vector(({"instance": "a"}, "1"))))
    sink = fake(_trickle)
    cfg = config(tmp_path, good.url, sink.url, name="send.yaml", http={"timeout": "1s", "retries": 0})
    start = time.monotonic()
    o = run("once", "-c", cfg, "--send")
    took = time.monotonic() - start
    assert o.returncode == 1
    assert "timed out after 1s" in o.stderr and "sent: 0 delivered" in o.stderr, o.stderr
    assert took < 8, took


# --- 4. inputs that blow up --------------------------------------------------------------------------


def test_alias_bombs_absurd_durations_and_times_end_in_field_errors(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
                    + "".join(f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh"))
                    + "input: *h\n")
    r = run("validate", "-c", str(bomb), timeout=30)
    assert r.returncode == 2 and "expand to more than 200,000 values" in r.stderr, r.stderr
    no_traceback(r)

    cfg = config(tmp_path, "http://127.0.0.1:9", extra={"input": {"prometheus": {
        **_prom_section("http://127.0.0.1:9"), "query_offset": "99999999999h", "timeout": "1ns",
        "schedule": "@every 99999999999h"}}})
    r = run("validate", "-c", cfg)
    assert r.returncode == 2
    assert "error: input.prometheus.query_offset: '99999999999h' is too long" in r.stderr
    assert "error: input.prometheus.timeout: must be at least 1ms, got 1ns" in r.stderr
    assert "error: input.prometheus.schedule: '@every 99999999999h': the period must be at most" in r.stderr
    no_traceback(r)

    good = config(tmp_path, "http://127.0.0.1:9", name="good.yaml")
    for at in ("inf", "1e400", "nan", "0001-01-01", "now-99999999999h"):
        r = run("once", "-c", good, "--at", at)
        assert r.returncode == 2 and f"time {at!r} is out of range" in r.stderr, (at, r.stderr)
        no_traceback(r)


# --- 6. a sink that refuses everything ---------------------------------------------------------------


def test_a_sink_refusing_everything_costs_three_requests_and_one_dead_letter_entry(tmp_path, redis_url):
    with OpenMeterSink(token=TOKEN) as sink:
        side = SendSide(tmp_path, sink, redis_url, {"batching": {"count": 64, "period": "200ms"}})
        try:
            side.worker("send")
            sink.fail_for(600, status=400)
            side.enqueue(tick_of(queries=1, series=64))
            wait_until(lambda: side.dlq("list").stdout.count(" q0 ") == 1, 30, "the dead-letter entry")
            time.sleep(1)
            assert len(sink.requests) == 3  # the batch, then its halves; not 2N-1 = 127
            listed = side.dlq("list").stdout
            assert len(listed.splitlines()) == 3, listed  # a header, one entry, a total
            entry = json.loads(side.dlq("show", listed.splitlines()[1].split()[0]).stdout)
            assert len(entry["events"]) == 64 and entry["status"] == 400 and "injected failure" in entry["body"]
        finally:
            side.stop()


# --- 7. Prometheus' own error text -------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 422, 503])
def test_prometheus_error_documents_are_shown_as_prometheus_wrote_them(tmp_path, fake, status):
    prom = fake(lambda h, body: (status, b'{"status":"error","errorType":"bad_data","error":"invalid parameter '
                                          b'\\"query\\": 1:1: parse error: unexpected end of input"}'))
    o = run("once", "-c", config(tmp_path, prom.url))
    assert o.returncode == 1
    assert "Prometheus bad_data" in o.stderr
    assert 'invalid parameter "query": 1:1: parse error: unexpected end of input' in o.stderr, o.stderr


# --- Redis down --------------------------------------------------------------------------------------


def test_every_command_with_redis_down_prints_one_clear_line(tmp_path):
    cfg = config(tmp_path, "http://127.0.0.1:9", redis_url="redis://127.0.0.1:1/0")
    for args in (["status"], ["dlq", "list"], ["dlq", "replay", "--all"], ["health"],
                 ["backfill", "--from", "now-10s", "--to", "now"]):
        r = run(*args, "-c", cfg)
        assert r.returncode == 1, (args, r.stderr)
        no_traceback(r)
        lines = [line for line in (r.stdout + r.stderr).splitlines()
                 if "127.0.0.1:1" in line or "Redis" in line]
        assert len(lines) == 1 and "does not answer" in lines[0], (args, r.stdout + r.stderr)
