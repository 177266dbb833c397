import fakeredis
import pytest
import redis

from meterworker.delivery.deadletter import DeadLetters
from meterworker.delivery.dedup import Delivered
from meterworker.schedule.state import State


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_cursors_only_move_forward(r):
    s = State(r, "c")
    assert s.cursors([]) == []
    assert s.cursors(["q", "other"]) == [None, None]
    s.advance_cursors([("q", 120), ("other", 60)])
    s.advance_cursors([("q", 60), ("other", 180)])
    assert s.cursors(["q", "other"]) == [120, 180]
    assert r.get("meterworker:c:cursor:q") == b"120"


def test_the_counter_gap_shown_is_the_newest_ticks_however_late_an_older_one_is_recorded(r):
    s = State(r, "c")
    s.record_counter_gap("q", 120, 3, 10.0, ["a"])
    s.record_counter_gap("q", 60, 1, 10.0, ["b"])  # a retry of an older tick, recorded later
    assert (s.counter_gap("q")["tick"], s.counter_gap("q")["series"]) == (120, 3)
    s.record_counter_gap("q", 180, 2, 10.0, ["c"])
    assert (s.counter_gap("q")["tick"], s.counter_gap("q")["examples"]) == (180, ["c"])
    assert 0 < r.ttl("meterworker:c:counter-gap:q") <= 7 * 86400


def test_a_tick_is_claimed_once(r):
    s = State(r, "c")
    assert s.claim_many([("q", 60), ("q", 120)], 100) == [True, True]
    assert s.claim_many([("q", 60), ("q", 180), ("other", 60)], 100) == [False, True, True]
    assert s.claim_many([], 100) == []
    assert 0 < r.ttl("meterworker:c:claim:q:60") <= 100
    assert s.query_status("q")["pending"] == [60, 120, 180]


def test_pending_until_completed(r):
    s = State(r, "c")
    s.mark_pending("q", 60)
    s.mark_pending("q", 120)
    s.record_failure("q", 60, "Prometheus down", 2)
    st = s.query_status("q")
    assert st["pending"] == [60, 120] and st["failure"]["error"] == "Prometheus down"
    assert st["failure"]["tick"] == 60 and st["failure"]["attempt"] == 2
    s.complete("q", 60)
    st = s.query_status("q")
    assert st == {"last_completed": 60, "pending": [120], "failure": None}


def test_completed_only_moves_forward(r):
    s = State(r, "c")
    s.complete("q", 120)
    s.complete("q", 60)
    assert s.query_status("q")["last_completed"] == 120


def test_a_failure_of_a_tick_no_longer_pending_does_not_make_it_pending(r):
    s = State(r, "c")
    s.record_failure("q", 60, "late retry of a completed tick", 3)
    assert s.query_status("q")["pending"] == []


def test_delivered_ids_are_filtered():
    s = Delivered(fakeredis.FakeRedis(), "c")
    evs = [{"id": str(i), "source": "prometheus"} for i in range(3)]
    s.mark(evs[:2], 3600)
    assert s.undelivered(evs) == [evs[2]]
    assert s.undelivered([{"id": "0", "source": "other"}]) == [{"id": "0", "source": "other"}]


def test_dead_letters_keep_everything_but_secrets():
    dl = DeadLetters(fakeredis.FakeRedis(), "c", scrub=lambda s: s.replace("s3cret", "****"))
    entry = dl.add([{"id": "1"}], reason="rejected with HTTP 400", status=400, body="echo: Bearer s3cret",
                   attempts=1, first_failure=1.0, query="q", tick=60)
    got = dl.get(entry)
    assert got["events"] == [{"id": "1"}] and got["status"] == 400 and got["query"] == "q" and got["tick"] == 60
    assert "s3cret" not in got["body"]
    assert dl.ids() == [entry] and dl.count() == 1
    assert dl.purge() == 1 and dl.count() == 0


def test_a_claimed_tick_is_pending_and_stalls_without_activity(monkeypatch, r):
    import meterworker.schedule.state as state_mod

    clock = [1000.0]
    monkeypatch.setattr(state_mod.time, "time", lambda: clock[0])
    s = State(r, "c")
    assert s.claim_many([("q", 60)], 100) == [True]
    assert s.query_status("q")["pending"] == [60]
    clock[0] = 1050.0
    assert s.stalled_many(["q"], idle=100) == [[]]
    s.record_failure("q", 60, "down", 1)  # an attempt is a sign of life
    clock[0] = 1120.0
    assert s.stalled_many(["q"], idle=100) == [[]]
    clock[0] = 1151.0
    assert s.stalled_many(["q", "other"], idle=100) == [[60], []]
    s.mark_pending("q", 60)  # redispatched: a sign of life again
    assert s.stalled_many(["q"], idle=100) == [[]]
    s.complete("q", 60)
    assert s.stalled_many(["q"], idle=0) == [[]]


def test_stalled_ticks_come_oldest_first(monkeypatch, r):
    import meterworker.schedule.state as state_mod

    clock = [1000.0]
    monkeypatch.setattr(state_mod.time, "time", lambda: clock[0])
    s = State(r, "c")
    s.claim_many([("q", 180)], 100)
    clock[0] = 1001.0
    s.claim_many([("q", 60), ("q", 120)], 100)
    clock[0] = 2000.0
    assert s.stalled_many(["q"], idle=100) == [[60, 120, 180]]


def test_a_running_tick_has_one_lease_which_is_a_sign_of_life(monkeypatch, r):
    import meterworker.schedule.state as state_mod

    clock = [1000.0]
    monkeypatch.setattr(state_mod.time, "time", lambda: clock[0])
    s = State(r, "c")
    s.claim_many([("q", 60)], 100)
    assert s.lease("q", 60, "task-a", ttl=30) is None
    assert 29_000 < r.pttl("meterworker:c:running:q:60") <= 30_000
    assert s.lease("q", 60, "task-b", ttl=30) == "task-a"  # a second copy is refused
    clock[0] = 1090.0
    assert s.lease("q", 60, "task-a", ttl=30) is None  # renewed: the sign of life is fresh
    clock[0] = 1150.0
    assert s.stalled_many(["q"], idle=100) == [[]]
    s.release("q", 60, "task-b")  # not its lease: nothing happens
    assert r.get("meterworker:c:running:q:60") == b"task-a"
    s.release("q", 60, "task-a")
    assert not r.exists("meterworker:c:running:q:60")
    assert s.lease("q", 60, "task-b", ttl=30) is None
    # A lease on a tick that is not pending (a task sent by hand) does not make it pending.
    assert s.lease("q", 120, "task-c", ttl=30) is None
    assert s.query_status("q")["pending"] == [60]
    # A copy of the task after beat's tick completed has nothing to do.
    s.release("q", 60, "task-b")
    s.complete("q", 60)
    assert s.lease("q", 60, "task-d", ttl=30) == State.DONE
    assert not r.exists("meterworker:c:running:q:60")
    s.mark_pending("q", 60)  # a backfill of it: it runs again
    assert s.lease("q", 60, "task-d", ttl=30) is None


def test_a_failed_attempt_is_alive_until_its_retry_is_due(monkeypatch, r):
    import meterworker.schedule.state as state_mod

    clock = [1000.0]
    monkeypatch.setattr(state_mod.time, "time", lambda: clock[0])
    s = State(r, "c")
    s.claim_many([("q", 60)], 100)
    s.record_failure("q", 60, "down", 3, retry_in=300)
    clock[0] = 1000 + 300 + 59
    assert s.stalled_many(["q"], idle=60) == [[]]
    clock[0] = 1000 + 300 + 61
    assert s.stalled_many(["q"], idle=60) == [[60]]


def test_a_task_holding_its_lease_past_the_ttl_keeps_it_and_completing_lets_it_go_for_good(r):
    import time

    from meterworker.query.lease import TickLease

    s = State(r, "lease")
    key = "meterworker:lease:running:q:60"
    with TickLease(s, "q", 60, "task-a", ttl=0.4) as lease:  # not dispatched by beat: nothing marks it done
        assert lease.other is None
        time.sleep(1.2)  # three times the ttl: renewed meanwhile
        assert r.get(key) == b"task-a"
        with TickLease(s, "q", 60, "task-b", ttl=0.4) as second:
            assert second.other == "task-a"
        lease.complete()
        assert not r.exists(key)
        time.sleep(0.5)  # no renewal after the release takes it again
        assert not r.exists(key)
    assert s.query_status("q")["last_completed"] == 60
