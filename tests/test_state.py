import fakeredis

from meterworker.delivery.deadletter import DeadLetters
from meterworker.delivery.dedup import Delivered
from meterworker.schedule.state import BeatLock, State


def test_cursor_only_moves_forward():
    s = State(fakeredis.FakeRedis(), "c")
    s.advance_cursor("q", 120)
    s.advance_cursor("q", 60)
    assert s.cursor("q") == 120


def test_a_tick_is_claimed_once():
    s = State(fakeredis.FakeRedis(), "c")
    assert s.claim("q", 60, 100) is True
    assert s.claim("q", 60, 100) is False
    assert s.claim("q", 120, 100) is True


def test_pending_until_completed():
    s = State(fakeredis.FakeRedis(), "c")
    s.mark_pending("q", 60)
    s.mark_pending("q", 120)
    s.record_failure("q", 60, "Prometheus down", 2)
    st = s.query_status("q")
    assert st["pending"] == [60, 120] and st["failure"]["error"] == "Prometheus down"
    s.complete("q", 60)
    st = s.query_status("q")
    assert st == {"last_completed": 60, "pending": [120], "failure": None}


def test_delivered_ids_are_filtered():
    s = Delivered(fakeredis.FakeRedis(), "c")
    evs = [{"id": str(i), "source": "prometheus"} for i in range(3)]
    s.mark(evs[:2], 3600)
    assert s.undelivered(evs) == [evs[2]]
    assert s.undelivered([{"id": "0", "source": "other"}]) == [{"id": "0", "source": "other"}]


def test_beat_lock_has_one_holder_and_is_released():
    r = fakeredis.FakeRedis()
    a, b = BeatLock(r, "c", "a", 10), BeatLock(r, "c", "b", 10)
    assert a.acquire() and not b.acquire()
    assert a.acquire()
    assert b.holder() == "a"
    a.release()
    assert b.acquire() and b.holder() == "b"


def test_dead_letters_keep_everything_but_secrets():
    dl = DeadLetters(fakeredis.FakeRedis(), "c", scrub=lambda s: s.replace("s3cret", "****"))
    entry = dl.add([{"id": "1"}], reason="rejected with HTTP 400", status=400, body="echo: Bearer s3cret",
                   attempts=1, first_failure=1.0, query="q", tick=60)
    got = dl.get(entry)
    assert got["events"] == [{"id": "1"}] and got["status"] == 400 and got["query"] == "q" and got["tick"] == 60
    assert "s3cret" not in got["body"]
    assert dl.ids() == [entry] and dl.count() == 1
    assert dl.purge() == 1 and dl.count() == 0


def test_a_claimed_tick_is_pending_and_stalls_without_activity(monkeypatch):
    import meterworker.schedule.state as state_mod

    clock = [1000.0]
    monkeypatch.setattr(state_mod.time, "time", lambda: clock[0])
    s = State(fakeredis.FakeRedis(), "c")
    assert s.claim("q", 60, 100)
    assert s.query_status("q")["pending"] == [60]
    clock[0] = 1050.0
    assert s.stalled("q", idle=100) == []
    s.record_failure("q", 60, "down", 1)  # an attempt is a sign of life
    clock[0] = 1120.0
    assert s.stalled("q", idle=100) == []
    clock[0] = 1151.0
    assert s.stalled("q", idle=100) == [60]
    s.complete("q", 60)
    assert s.stalled("q", idle=0) == []
