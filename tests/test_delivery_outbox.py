"""The outbox and the in-flight slots on a real Redis: what waits, what is taken, what a dead worker leaves."""

import time

import pytest
import redis

from meterworker.delivery.batching import full_batches_formed, overdue
from meterworker.delivery.deadletter import DeadLetters
from meterworker.delivery.dedup import Delivered
from meterworker.delivery.inflight import InFlightSlots
from meterworker.delivery.outbox import NONE_READY, LeaseLost, Outbox

DAY = 86400


def ev(i):
    return {"specversion": "1.0", "id": f"id-{i}", "source": "prometheus", "type": "q", "subject": f"s{i}",
            "time": "2026-11-27T10:00:00Z", "data": {"value": i, "metric": {}}}


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def outbox(r, count=3, period=0.3, lease=0.3):
    return Outbox(r, "t", Delivered(r, "t"), DeadLetters(r, "t"), count=count, period=period, lease=lease)


def ids(batch):
    return sorted(i.event["id"] for i in batch.items)


def test_batches_leave_when_full_or_when_the_oldest_event_waited_the_period(r):
    box = outbox(r, count=3, period=0.3)
    assert box.add([ev(1), ev(2)], {"query": "q", "tick": 60}).full_batches == 0
    assert box.take() is None
    time.sleep(0.35)
    assert ids(box.take()) == ["id-1", "id-2"]
    added = box.add([ev(3), ev(4), ev(5), ev(6)], {"query": "q", "tick": 120})
    assert added.full_batches == 1
    batch = box.take()
    assert ids(batch) == ["id-3", "id-4", "id-5"]
    assert {(i.query, i.tick) for i in batch.items} == {("q", 120)}
    assert box.take() is None  # one event, younger than the period


def test_a_thousand_query_tasks_of_three_events_make_thirty_full_batches(r):
    box = outbox(r, count=100, period=60)
    formed = sum(box.add([ev(3 * q), ev(3 * q + 1), ev(3 * q + 2)], {"query": f"q{q}", "tick": 60}).full_batches
                 for q in range(1000))
    assert formed == 30
    taken = [box.take() for _ in range(31)]
    assert [len(b.items) for b in taken[:30]] == [100] * 30 and taken[30] is None


def test_the_last_delivery_of_a_batch_takes_the_next_ready_one_for_the_same_worker(r):
    box = outbox(r, count=2, period=60)
    box.add([ev(i) for i in range(1, 6)], {"query": "q", "tick": 60})  # two full batches and one event
    first = box.take()
    assert box.delivered_now(first, first.items, DAY, take_next=True)
    second = first.successor
    assert ids(second) == ["id-3", "id-4"]
    assert box.take() is None  # the one event left is not due, and the second batch is this worker's
    assert box.counts() == {"pending": 3, "queued": 1, "batches": 1}
    assert box.delivered_now(second, second.items[:1], DAY, take_next=True) is False
    assert second.successor is None  # not done yet: nothing taken
    assert box.delivered_now(second, second.items[1:], DAY, take_next=True)
    assert second.successor is NONE_READY
    assert box.counts() == {"pending": 1, "queued": 1, "batches": 0}


def test_a_batch_written_before_batches_kept_digests_is_taken_and_delivered(r):
    """A batch as the code before wrote it (JSON segments per tick, no digests), written by hand."""
    import orjson

    box = outbox(r, count=3, period=60)
    data = "meterworker:t:outbox:batch-data"
    blob = b",".join(orjson.dumps({"query": "q", "tick": t, "events": [ev(i) for i in ids]})
                     for t, ids in ((60, (1, 2)), (120, (3,))))
    r.hset(data, mapping={"old1": blob, "old1:c": 3, "old1:n": 3})
    r.zadd("meterworker:t:outbox:ready", {"old1": 1.0})
    r.hset("meterworker:t:outbox:stats", mapping={"pending": 3, "queued": 3})
    batch = box.take()
    assert [(i.event["id"], i.query, i.tick) for i in batch.items] == [("id-1", "q", 60), ("id-2", "q", 60),
                                                                        ("id-3", "q", 120)]
    assert box.delivered_now(batch, batch.items, DAY)
    assert box.add([ev(1), ev(2)], {"query": "q", "tick": 60}).skipped == 2  # marked delivered
    assert box.counts() == {"pending": 0, "queued": 0, "batches": 0} and not r.exists(data)


def test_an_event_pending_or_delivered_is_not_queued_again(r):
    box = outbox(r, count=2)
    assert box.add([ev(1), ev(2)], {}).added == 2
    assert box.add([ev(1), ev(2), ev(3)], {}).skipped == 2  # waiting in the queue
    batch = box.take()
    assert box.add([ev(1), ev(2)], {}).skipped == 2  # in a batch under way
    box.delivered_now(batch, batch.items, DAY)
    box.finish(batch)
    assert box.add([ev(1), ev(2)], {}).skipped == 2  # delivered
    assert box.counts() == {"pending": 1, "queued": 1, "batches": 0}


def test_a_batch_whose_worker_died_is_handed_out_again_once(r):
    box = outbox(r, count=2, lease=0.3)
    box.add([ev(1), ev(2)], {})
    dead = box.take()
    assert list(box.claim_due()) == []  # its lease runs
    time.sleep(0.35)
    [(batch_id, gen)] = list(box.claim_due())
    assert batch_id == dead.id and list(box.claim_due()) == []
    again = box.resume(batch_id, gen)
    assert ids(again) == ["id-1", "id-2"] and again.attempt == 1
    assert box.resume(batch_id, gen) is None  # the same message delivered twice
    with pytest.raises(LeaseLost):
        box.renew(dead)
    box.renew(again)


def four_taken(r, lease: float):
    """An outbox of batches of 4 with q's tick 60 of 4 events added and its batch taken; the dead-letter store;
    the batch; its items by event id."""
    box = outbox(r, count=4, lease=lease)
    box.add([ev(1), ev(2), ev(3), ev(4)], {"query": "q", "tick": 60})
    batch = box.take()
    return box, DeadLetters(r, "t"), batch, {i.event["id"]: i for i in batch.items}


def test_settled_events_leave_the_batch_at_once_and_the_rest_is_resumed(r):
    box, dl, batch, by_id = four_taken(r, lease=0.3)
    box.delivered_now(batch, [by_id["id-1"], by_id["id-2"]], DAY)
    entry = dl.build([by_id["id-3"].event], reason="rejected with HTTP 400 Bad Request", status=400, body="bad",
                     attempts=1, first_failure=1.0, query="q", tick=60)
    box.dead_lettered(batch, [by_id["id-3"]], [entry])
    # the worker dies here
    time.sleep(0.35)
    [(batch_id, gen)] = list(box.claim_due())
    assert ids(box.resume(batch_id, gen)) == ["id-4"]
    assert Delivered(r, "t").undelivered([ev(1), ev(2), ev(3)], "q", 60) == [ev(3)]
    assert [e["events"] for e in dl.all()] == [[ev(3)]]


def test_a_retry_is_due_after_its_delay_and_keeps_its_count_and_first_failure(r):
    box = outbox(r, count=2, lease=5)
    box.add([ev(1), ev(2)], {})
    batch = box.take()
    box.finish(batch, retry_in=0.3, first_failure=123.5)
    assert list(box.claim_due()) == []
    time.sleep(0.35)
    [(batch_id, gen)] = list(box.claim_due())
    again = box.resume(batch_id, gen)
    assert (again.attempt, again.first_failure, ids(again)) == (2, 123.5, ["id-1", "id-2"])
    box.delivered_now(again, again.items, DAY)
    box.finish(again)
    assert box.counts() == {"pending": 0, "queued": 0, "batches": 0}


def test_in_flight_slots_are_limited_and_come_back_from_a_dead_holder(r):
    slots = InFlightSlots(r, "t", limit=2, ttl=0.3)
    assert slots.try_acquire("a") and slots.try_acquire("b")
    assert not slots.try_acquire("c")
    assert slots.try_acquire("a")  # renewing
    slots.release("a")
    assert slots.try_acquire("c") and not slots.try_acquire("d")
    time.sleep(0.35)  # b and c died
    assert slots.try_acquire("d") and slots.try_acquire("e")
    assert slots.in_use() == 2


def test_batching_rules():
    assert full_batches_formed(99, 102, 100) == 1
    assert full_batches_formed(0, 250, 100) == 2
    assert full_batches_formed(101, 150, 100) == 0
    assert overdue(1, 1.0, 1.0) and overdue(500, 3.0, 1.0)
    assert not overdue(500, 0.5, 1.0)
    assert not overdue(0, 5.0, 1.0)


def test_not_pending_leaves_out_what_the_outbox_holds(redis_url):
    import redis as redis_lib

    from meterworker.delivery.deadletter import DeadLetters
    from meterworker.delivery.dedup import Delivered
    from meterworker.delivery.outbox import Outbox

    r = redis_lib.Redis.from_url(redis_url)
    box = Outbox(r, "np", Delivered(r, "np"), DeadLetters(r, "np"), count=100, period=60, lease=30)
    held = [{"id": "a", "source": "prometheus"}, {"id": "b", "source": "prometheus"}]
    free = {"id": "c", "source": "prometheus"}
    box.add(held, {"query": "q", "tick": 60})
    assert box.not_pending(held + [free]) == [free]


def marked_events(query, tick, first, last):
    return [{"source": "prometheus", "id": f"{query}-{tick}-{i}"} for i in range(first, last)]


def test_marks_are_exact_per_tick_for_small_ticks_big_ticks_and_events_of_no_tick(r):
    d = Delivered(r, "t")
    t0 = 1767225600
    for t in range(t0, t0 + 100):  # ticks of 10 series: packed 32 ticks to a field
        d.mark(marked_events("s", t, 0, 10), DAY, "s", t)
    for first in range(0, 5000, 500):  # a tick of 5,000 series marked a batch at a time: beyond one field
        d.mark(marked_events("b", t0, first, first + 500), DAY, "b", t0)
    d.mark(marked_events("n", None, 0, 5), DAY, "n", None)
    for t in range(t0, t0 + 100):
        assert d.undelivered(marked_events("s", t, 0, 12), "s", t) == marked_events("s", t, 10, 12)
        assert d.undelivered(marked_events("s", t + 1000, 0, 3), "s", t + 1000) == marked_events("s", t + 1000, 0, 3)
    assert d.undelivered(marked_events("b", t0, 0, 5100), "b", t0) == marked_events("b", t0, 5000, 5100)
    assert d.undelivered(marked_events("n", None, 0, 7), "n", None) == marked_events("n", None, 5, 7)
    # a tick's marks count for that tick only, and for that query only
    assert d.undelivered(marked_events("s", t0, 0, 10), "s", t0 + 1) == marked_events("s", t0, 0, 10)
    assert d.undelivered(marked_events("s", t0, 0, 10), "b", t0) == marked_events("s", t0, 0, 10)
    # 8 bytes a mark, give or take the fields' headers: far from one key per id
    small = r.memory_usage(d.where("s", t0)[0], samples=0)
    assert small < 100 * 10 * 16, small
    assert 0 < r.ttl(d.where("s", t0)[0]) <= DAY


def test_a_tick_re_run_with_more_series_queues_only_the_new_ones(r):
    box = outbox(r, count=100, period=0.0, lease=5)
    first = [ev(i) for i in range(10)]
    box.add(first, {"query": "q", "tick": 60})
    batch = box.take()
    assert box.delivered_now(batch, batch.items, DAY)
    added = box.add([ev(i) for i in range(15)], {"query": "q", "tick": 60})
    assert (added.added, added.skipped) == (5, 10)
    assert ids(box.take()) == sorted(f"id-{i}" for i in range(10, 15))


def test_an_outbox_that_read_a_ticks_marks_sees_them_made_again_after_they_expired(r):
    box = outbox(r, count=100, period=0.0, lease=5)
    box.add([ev(i) for i in range(10)], {"query": "q", "tick": 60})
    batch = box.take()
    box.delivered_now(batch, batch.items, DAY)
    assert box.add([ev(i) for i in range(10)], {"query": "q", "tick": 60}).skipped == 10
    d = Delivered(r, "t")
    r.delete(d.where("q", 60)[0])  # the marks expired...
    time.sleep(0.01)
    d.mark([ev(i) for i in range(5)], DAY, "q", 60)  # ...and a command delivered 5 of the events since
    added = box.add([ev(i) for i in range(10)], {"query": "q", "tick": 60})
    assert (added.added, added.skipped) == (5, 5)
    assert ids(box.take()) == sorted(f"id-{i}" for i in range(5, 10))


def test_small_ticks_share_batches_and_each_event_keeps_its_query_and_tick(r):
    box = outbox(r, count=4, period=60)
    for q in range(3):
        box.add([ev(10 * q), ev(10 * q + 1)], {"query": f"q{q}", "tick": 60 + q})
    batch = box.take()
    assert [(i.event["id"], i.query, i.tick) for i in batch.items] == [
        ("id-0", "q0", 60), ("id-1", "q0", 60), ("id-10", "q1", 61), ("id-11", "q1", 61)]
    assert box.take() is None and box.counts() == {"pending": 6, "queued": 2, "batches": 1}


def test_another_process_does_not_queue_again_what_one_holds(r):
    box, other = outbox(r, count=2, period=60), outbox(r, count=2, period=60)
    box.add([ev(1), ev(2), ev(3)], {"query": "q", "tick": 60})
    assert other.add([ev(1), ev(2), ev(3), ev(4)], {"query": "q", "tick": 60}).added == 1
    batch = box.take()
    assert box.add([ev(1), ev(2), ev(3), ev(4)], {"query": "q", "tick": 60}).added == 0
    box.delivered_now(batch, batch.items, DAY)
    assert other.add([ev(1), ev(2), ev(5)], {"query": "q", "tick": 60}).added == 1
    assert box.counts()["pending"] == 3


def test_a_dead_lettered_event_can_be_queued_again_while_the_rest_of_its_tick_is_pending(r):
    box, dl, batch, by_id = four_taken(r, lease=5)
    entry = dl.build([ev(3)], reason="rejected", status=400, body="bad", attempts=1, first_failure=1.0,
                     query="q", tick=60)
    box.dead_lettered(batch, [by_id["id-3"]], [entry])
    assert [e["events"] for e in dl.all()] == [[ev(3)]]
    again = box.add([ev(1), ev(2), ev(3), ev(4)], {"query": "q", "tick": 60})  # `dlq replay`, or a re-run
    assert (again.added, again.skipped) == (1, 3)
    assert box.add([ev(3)], {"query": "q", "tick": 60}).added == 0  # pending again
    assert outbox(r, count=4).add([ev(3)], {"query": "q", "tick": 60}).added == 0


def test_events_settled_twice_count_once_and_the_outbox_leaves_only_marks_behind(r):
    box = outbox(r, count=3, lease=0.3)
    box.add([ev(1), ev(2), ev(3)], {"query": "q", "tick": 60})
    stale = box.take()
    time.sleep(0.35)
    [(batch_id, gen)] = list(box.claim_due())
    current = box.resume(batch_id, gen)
    box.delivered_now(stale, stale.items[:2], DAY)  # the worker that lost its lease still had the answer
    assert not box.delivered_now(current, current.items[:2], DAY)
    assert box.counts()["pending"] == 1
    assert box.delivered_now(current, current.items, DAY)
    assert box.counts() == {"pending": 0, "queued": 0, "batches": 0}
    assert Delivered(r, "t").undelivered([ev(1), ev(2), ev(3)], "q", 60) == []
    left = {k.decode() for k in r.keys("meterworker:t:*")}
    assert left == {"meterworker:t:outbox:stats", Delivered(r, "t").where("q", 60)[0]}, left


def test_the_outbox_of_the_release_before_is_sent_first_and_its_events_are_not_queued_again(r):
    """The per-event layout of the release before, written by hand: queued events and a batch whose worker
    died are taken and settled with that layout, and the events it holds are not queued again."""
    import json

    p = "meterworker:t"
    queued, in_batch = [ev(i) for i in range(1, 4)], [ev(i) for i in range(4, 6)]

    def old_key(e):
        return json.dumps([e["source"], e["id"]], separators=(",", ":"))

    for e in queued + in_batch:
        r.hset(f"{p}:outbox:pending", old_key(e), json.dumps({"event": e, "query": "q", "tick": 60}))
    r.zadd(f"{p}:outbox:queue", {old_key(e): time.time() - 5 for e in queued})
    r.hset(f"{p}:outbox:batch:old1", mapping={"gen": 1, "attempt": 2, "first_failure": 12.5})
    r.sadd(f"{p}:outbox:batch:old1:members", *[old_key(e) for e in in_batch])
    r.zadd(f"{p}:outbox:batches", {"old1": time.time() - 1})
    box = outbox(r, count=3, period=0.3, lease=5)
    assert box.counts() == {"pending": 5, "queued": 3, "batches": 1}

    assert box.add(queued + in_batch + [ev(6)], {"query": "q", "tick": 60}).added == 1
    first = box.take()
    assert first.legacy and ids(first) == ["id-1", "id-2", "id-3"]
    [(batch_id, gen)] = list(box.claim_due())
    old = box.resume(batch_id, gen)
    assert old.legacy and (old.attempt, old.first_failure, ids(old)) == (2, 12.5, ["id-4", "id-5"])
    assert box.delivered_now(first, first.items, DAY)
    box.delivered_now(old, old.items[:1], DAY)
    box.finish(old, retry_in=0.0)
    [(batch_id, gen)] = list(box.claim_due())
    again = box.resume(batch_id, gen)
    assert ids(again) == [i.event["id"] for i in old.items[1:]]
    assert box.delivered_now(again, again.items, DAY)
    time.sleep(0.35)
    new = box.take()
    assert not new.legacy and ids(new) == ["id-6"]
    assert box.delivered_now(new, new.items, DAY)
    assert box.counts() == {"pending": 0, "queued": 0, "batches": 0}
    assert box.add([ev(i) for i in range(1, 7)], {"query": "q", "tick": 60}).added == 0


def test_a_run_of_a_tick_keeps_no_digests_of_its_own_and_another_run_still_finds_them_pending(r):
    box = outbox(r, count=100, period=60)
    first = {"query": "q", "tick": 60, "run": "run-1"}
    box.add([ev(i) for i in range(5)], first)
    box.add([ev(i) for i in range(5, 10)], first)
    _, log = box._tick("q", 60)
    assert sum(log.held.values()) == 0  # a run's slices hold different events: nothing kept for them
    again = box.add([ev(i) for i in range(12)], {"query": "q", "tick": 60, "run": "run-2"})  # a retry, same process
    assert (again.added, again.skipped) == (2, 10)
    assert box.add([ev(i) for i in range(12)], {"query": "q", "tick": 60}).added == 0
    assert box.counts()["pending"] == 12
