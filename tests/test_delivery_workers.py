"""Delivery with real send workers, a real Redis and the OpenMeter-compatible sink.

The test process plays the query workers: it hands events to the send side through
`enqueue_events`, in a process of its own, as a query task does.
"""

import json
import os
import subprocess
import sys
import time

import pytest
import redis

from tests.support import OpenMeterSink
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

TOKEN = "dlv-s3cret-token-4f1e"
NOT_PROMETHEUS = "http://127.0.0.1:9"  # send workers never query it

ENQUEUE = """
import json, sys
from meterworker import runtime
from meterworker.delivery.task import enqueue_events
for events, meta in json.load(sys.stdin):
    enqueue_events(runtime.current(), events, meta)
"""


def event(query, tick, n):
    return {"specversion": "1.0", "id": f"{query}-{tick}-{n}", "source": "prometheus", "type": query,
            "subject": f"customer-{n}", "time": "2026-11-27T10:00:00Z",
            "data": {"value": float(n), "metric": {"instance": f"customer-{n}"}}}


def tick_of(queries, series, tick=1795860000):
    """What one tick of `queries` queries with `series` series each hands over: [(events, meta)]."""
    return [([event(f"q{q}", tick, n) for n in range(series)], {"query": f"q{q}", "tick": tick})
            for q in range(queries)]


def ids(handed):
    return sorted(e["id"] for events, _ in handed for e in events)


class SendSide:
    def __init__(self, tmp_path, sink, redis_url, http):
        self.tmp_path, self.redis_url = tmp_path, redis_url
        http = {"headers": {"Authorization": "Bearer ${SINK_TOKEN}"}, "timeout": "2s", **http}
        self.cfg = write_config(tmp_path / "collector.yaml", NOT_PROMETHEUS, sink.url,
                                [{"name": "q0", "promql": "up"}], redis_url=redis_url, name="dlv", http=http)
        self.env = {"SINK_TOKEN": TOKEN, "METERWORKER_CONFIG": str(self.cfg), "METERWORKER_REDIS_URL": redis_url}
        self.workers: list[Proc] = []
        self.r = redis.Redis.from_url(redis_url, decode_responses=True)
        self.raw = redis.Redis.from_url(redis_url)

    def worker(self, name, concurrency=2) -> Proc:
        proc = Proc(meterworker("worker", "-c", str(self.cfg), "-Q", "send", "--concurrency", str(concurrency),
                                "-n", f"{name}@%h", "--loglevel", "DEBUG"),
                    self.tmp_path / f"{name}.log", env=self.env, cwd=self.tmp_path)
        self.workers.append(proc)
        wait_until(lambda: "sweeper started" in proc.output(), 60, f"send worker {name} to start", proc)
        return proc

    def enqueue(self, handed) -> None:
        subprocess.run([sys.executable, "-c", ENQUEUE], input=json.dumps(handed), text=True, check=True,
                       env={**os.environ, **self.env}, cwd=self.tmp_path, timeout=60)

    def dlq(self, *args, input=None):
        return subprocess.run(meterworker("dlq", *args, "-c", str(self.cfg)), capture_output=True, text=True,
                              env={**os.environ, **self.env}, cwd=self.tmp_path, timeout=60, input=input)

    def redis_dump(self) -> str:
        """Every string in the collector's Redis keys, for looking for secrets (delivered marks are binary:
        bytes that are not UTF-8 are shown escaped)."""
        r = self.raw
        out = []
        for key in r.scan_iter("*"):
            kind = r.type(key)
            if kind == b"string":
                out.append(r.get(key))
            elif kind == b"hash":
                out += [k + b"=" + v for k, v in r.hgetall(key).items()]
            elif kind in (b"list",):
                out += r.lrange(key, 0, -1)
            elif kind in (b"set",):
                out += list(r.smembers(key))
            elif kind == b"zset":
                out += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        return "\n".join(v.decode(errors="backslashreplace") for v in out)

    def stop(self):
        for w in self.workers:
            w.stop()
        self.r.close()


@pytest.fixture
def sink():
    with OpenMeterSink(token=TOKEN) as s:
        yield s


@pytest.fixture
def send_side(tmp_path, sink, redis_url, request):
    made = []

    def make(**http):
        side = SendSide(tmp_path, sink, redis_url, http)
        made.append(side)
        return side

    yield make
    for side in made:
        side.stop()


def test_a_tick_of_many_queries_goes_out_in_full_batches(send_side, sink):
    side = send_side(batching={"count": 100, "period": "1s"})
    side.worker("send-a")
    handed = tick_of(queries=1000, series=3)
    side.enqueue(handed)
    sink.wait_for_events(3000, timeout=60)
    time.sleep(1.5)  # a straggling request would show up now
    assert sorted(sink.ids()) == ids(handed) and not sink.duplicates()
    sizes = [len(r.events) for r in sink.requests]
    assert all(r.status == 204 for r in sink.requests)
    assert max(sizes) == 100 and len(sizes) <= 40, sizes  # about 30, not 1,000


def dumped_requests(proc: Proc) -> int:
    return proc.output().count("request POST ")


def test_a_send_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(send_side, sink):
    side = send_side(batching={"count": 50, "period": "500ms"}, dump_request_log_level="DEBUG",
                     retry_period="500ms", max_retry_backoff="1s")
    a = side.worker("send-a", concurrency=2)
    hang_until = time.monotonic() + 10
    sink.hang_for(10)  # requests are held: the worker is in the middle of its batches when it dies
    handed = tick_of(queries=20, series=10)  # 200 events, 4 batches
    side.enqueue(handed)
    wait_until(lambda: dumped_requests(a) >= 2, 30, "two requests under way", a)
    time.sleep(0.3)
    a.kill()
    assert time.monotonic() < hang_until - 1, "the requests were not held until the worker died"
    # What the dead worker sent must not count at the sink: its held requests get 503 when the hold ends.
    sink.fail_next(dumped_requests(a))
    wait_until(lambda: time.monotonic() > hang_until + 0.5, 10, "the hold to end")
    assert sink.events == []

    b = side.worker("send-b")
    sink.wait_for_events(200, timeout=60)
    time.sleep(1.5)  # a request sent twice would arrive now
    assert sorted(sink.ids()) == ids(handed)
    assert not sink.duplicates()
    assert "is due again" in b.output()  # the dead worker's batches, taken over when their lease ran out
    assert side.r.hlen("meterworker:dlv:outbox:batch-data") == 0  # no batch left in the outbox
    assert not side.r.keys("meterworker:dlv:outbox:tick:*")  # nothing of any tick pending
    assert TOKEN not in a.output() + b.output()


def test_a_sink_answering_503_for_20s_gets_every_event_afterwards(send_side, sink):
    side = send_side(batching={"count": 100, "period": "500ms"}, retries=12, retry_period="1s",
                     max_retry_backoff="4s")
    a = side.worker("send-a")
    sink.fail_for(20, status=503, retry_after=3)
    outage_ends = time.time() + 20
    handed = tick_of(queries=50, series=5)  # 250 events
    side.enqueue(handed)
    sink.wait_for_events(250, timeout=60)
    time.sleep(1.5)
    assert sorted(sink.ids()) == ids(handed) and not sink.duplicates()
    assert side.dlq("list").stdout.strip() == "the dead-letter store is empty"
    refused = [r for r in sink.requests if r.status == 503]
    assert refused and all(r.time < outage_ends for r in refused)
    # Retry-After: 3 is honoured: the same batch is not tried again sooner.
    def batch(r):
        return frozenset(e["id"] for e in r.json())

    tries = [r.time for r in sink.requests if batch(r) == batch(refused[0])]
    assert len(tries) >= 3 and min(b - a for a, b in zip(tries, tries[1:])) >= 2.9
    assert "retrying in" in a.output() and TOKEN not in a.output()


def test_a_bad_event_is_dead_lettered_with_the_sinks_message_and_a_replay_delivers_it(send_side, sink):
    side = send_side(batching={"count": 100, "period": "1s"}, dump_request_log_level="DEBUG")
    a = side.worker("send-a")
    [(events, meta)] = handed = tick_of(queries=1, series=100)
    bad = events[42]
    sink.reject_ids([bad["id"]], "subject 'customer-42' is not a known customer")
    side.enqueue(handed)
    sink.wait_for_events(99, timeout=30)
    wait_until(lambda: "dead-lettered" in a.output(), 30, "the bad event in the dead-letter store", a)

    assert sorted(sink.ids()) == sorted(e["id"] for e in events if e is not bad)
    assert len(sink.requests) < 20  # found by splitting, not one request per event
    listed = side.dlq("list")
    assert listed.returncode == 0, listed.stderr
    [entry_id] = [line.split()[0] for line in listed.stdout.splitlines()[1:-1]]
    assert "q0" in listed.stdout and " 400 " in listed.stdout
    shown = side.dlq("show", entry_id)
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)
    assert entry["events"] == [bad]
    assert entry["status"] == 400 and "subject 'customer-42' is not a known customer" in entry["body"]
    assert entry["attempts"] == 1 and entry["query"] == "q0" and entry["tick"] == "2026-11-28T10:00:00Z"
    assert entry["first_failure"] and entry["last_failure"] and "400" in entry["reason"]

    sink.clear_faults()
    replayed = side.dlq("replay", entry_id)
    assert replayed.returncode == 0, replayed.stderr
    assert "1 events queued" in replayed.stdout
    sink.wait_for_events(100, timeout=30)
    time.sleep(1.5)
    assert sorted(sink.ids()) == ids(handed) and not sink.duplicates()
    assert sink.events[-1] == bad  # the same event, with the same id
    assert side.dlq("list").stdout.strip() == "the dead-letter store is empty"

    log = a.output()
    assert "Bearer ****" in log  # the request dumps are there, masked
    assert TOKEN not in log + listed.stdout + shown.stdout + replayed.stdout
    assert TOKEN not in side.redis_dump()


def test_dlq_commands_explain_what_is_wrong(send_side):
    side = send_side()
    missing = side.dlq("show", "nosuchentry")
    assert missing.returncode == 1 and "no dead-letter entry 'nosuchentry'" in missing.stderr
    assert "Traceback" not in missing.stderr
    neither = side.dlq("replay")
    assert neither.returncode == 2 and "--all" in neither.stderr
    assert side.dlq("purge", input="n\n").stdout.strip() == "the dead-letter store is empty"


def test_a_redis_written_by_the_release_before_keeps_working(send_side, sink):
    """The layout of the release before, written by hand: events queued and in a batch whose worker died
    are delivered, and ids it marked delivered (one key per id) are not sent again while the marks live."""
    side = send_side(batching={"count": 20, "period": "300ms"})
    raw, p = side.raw, "meterworker:dlv"
    queued = [event("q0", 1795860000, n) for n in range(30)]
    in_batch = [event("q0", 1795860000, n) for n in range(30, 40)]
    marked = [event("q0", 1795860060, n) for n in range(20)]

    def old_key(e):
        return json.dumps([e["source"], e["id"]], separators=(",", ":"))

    for e in queued + in_batch:
        raw.hset(f"{p}:outbox:pending", old_key(e), json.dumps({"event": e, "query": "q0", "tick": 1795860000}))
    raw.zadd(f"{p}:outbox:queue", {old_key(e): time.time() - 5 for e in queued})
    raw.hset(f"{p}:outbox:batch:old1", mapping={"gen": 1, "attempt": 1})
    raw.sadd(f"{p}:outbox:batch:old1:members", *[old_key(e) for e in in_batch])
    raw.zadd(f"{p}:outbox:batches", {"old1": time.time() - 1})  # its worker died: the lease ran out
    for e in marked:
        raw.set(f"{p}:delivered:prometheus:{e['id']}", "1", ex=3600)

    side.worker("send-a")
    sink.wait_for_events(40, timeout=60)
    time.sleep(1.0)
    assert sorted(sink.ids()) == sorted(e["id"] for e in queued + in_batch) and not sink.duplicates()

    # The tick the old release delivered, re-run with 5 more series: only those 5 go; the tick just
    # delivered, re-run: nothing.
    again = [(marked + [event("q0", 1795860060, n) for n in range(20, 25)], {"query": "q0", "tick": 1795860060}),
             (queued + in_batch, {"query": "q0", "tick": 1795860000})]
    side.enqueue(again)
    sink.wait_for_events(45, timeout=60)
    time.sleep(1.5)
    assert sorted(sink.ids()) == sorted(e["id"] for e in queued + in_batch) + \
        sorted(f"q0-1795860060-{n}" for n in range(20, 25))
    assert not sink.duplicates()
    assert side.r.hlen(f"{p}:outbox:pending") == 0 and side.r.zcard(f"{p}:outbox:batches") == 0
