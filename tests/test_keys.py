"""The names meterworker uses in Redis and Celery, and the Lua scripts that use them."""

import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from meterworker import keys, scripts
from meterworker.keys import Keys

LUA_PACKAGES = ("meterworker.delivery", "meterworker.schedule")


def lua_files():
    return [(pkg, f.name) for pkg in LUA_PACKAGES
            for f in resources.files(pkg).joinpath("lua").iterdir() if f.name.endswith(".lua")]


def test_keys_are_those_earlier_releases_wrote():
    """A Redis written by one release is read by the next: these strings never change."""
    k = Keys("c")
    assert k.cursor("q") == "meterworker:c:cursor:q"
    assert k.claim("q", 1764237600) == "meterworker:c:claim:q:1764237600"
    assert k.pending("q") == "meterworker:c:pending:q"
    assert k.failure("q") == "meterworker:c:failure:q"
    assert k.running("q", 1764237600) == "meterworker:c:running:q:1764237600"
    assert k.completed("q") == "meterworker:c:completed:q"
    assert k.backfill_report("ab12") == "meterworker:c:backfill:ab12"
    assert k.counter_gap("q") == "meterworker:c:counter-gap:q"
    assert k.beat_lock == "meterworker:c:beat-lock"
    assert k.outbox_pending == "meterworker:c:outbox:pending"
    assert k.outbox_queue == "meterworker:c:outbox:queue"
    assert k.outbox_batches == "meterworker:c:outbox:batches"
    assert k.outbox_batch("b1") == "meterworker:c:outbox:batch:b1"
    assert k.outbox_batch_members("b1") == "meterworker:c:outbox:batch:b1:members"
    assert k.outbox_flush_requested == "meterworker:c:outbox:flush-requested"
    assert k.delivered("prometheus", "id-1") == "meterworker:c:delivered:prometheus:id-1"
    assert k.marks("q", "19723") == "meterworker:c:marks:q:19723"
    assert k.in_flight == "meterworker:c:in-flight"
    assert k.dlq == "meterworker:c:dlq"
    assert k.dlq_index == "meterworker:c:dlq:index"
    assert k.replication_probe == "meterworker:c:replication-probe"
    assert k.replication_shortfall == "meterworker:c:replication-shortfall"
    assert (keys.QUERY_TASK, keys.SEND_TASK) == ("meterworker.query", "meterworker.send")
    assert keys.QUEUES == ("query", "send")


def test_every_key_is_documented():
    doc = keys.__doc__
    k = Keys("{c}")
    built = [k.cursor("{q}"), k.claim("{q}", "{tick}"), k.pending("{q}"), k.running("{q}", "{tick}"),
             k.failure("{q}"), k.completed("{q}"),
             k.backfill_report("{run}"), k.counter_gap("{q}"), k.beat_lock, k.outbox_pending, k.outbox_queue, k.outbox_batches,
             k.outbox_batch("{id}"), k.outbox_batch_members("{id}"), k.outbox_flush_requested,
             k.delivered("{source}", "{id}"), k.marks("{q}", "{day}"), k.in_flight, k.dlq, k.dlq_index,
             k.replication_probe, k.replication_shortfall, k.backfill_stop(k.backfill_report("{run}")), k.sent]
    missing = [key for key in built if not re.search(rf"^\s*{re.escape(key)}(\s|$)", doc, re.MULTILINE)]
    assert not missing
    assert re.search(r"^\s*query, send\s+list", doc, re.MULTILINE)


def test_celery_routes_the_tasks_to_their_queues():
    import celeryconfig

    assert celeryconfig.task_routes == {"meterworker.query": {"queue": "query"}, "meterworker.send": {"queue": "send"},
                                        "meterworker.query_ticks": {"queue": "query"}}
    assert celeryconfig.task_default_queue == "query"


def test_names_and_the_script_loader_import_nothing_of_redis_or_celery():
    code = ("import sys, meterworker.keys, meterworker.scripts; "
            "print([m for m in ('redis', 'celery', 'kombu', 'httpx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


INCLUDES = ("now.lua", "payloads.lua", "marks.lua", "take.lua")  # pasted into other scripts, never run alone


@pytest.mark.parametrize("pkg,name", lua_files())
def test_each_script_says_what_it_takes_and_returns(pkg, name):
    text = resources.files(pkg).joinpath("lua", name).read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
    if name in INCLUDES:
        assert header.startswith("-- Included by")
        return
    assert "-- KEYS: " in header and "-- ARGV: " in header and "-- Returns " in header, name


@pytest.mark.parametrize("pkg,name", lua_files())
def test_includes_are_expanded_and_no_key_is_pasted_in(pkg, name):
    text = scripts.source(pkg, name)
    assert "-- include" not in text
    assert "meterworker:" not in text and "KEYS_" not in text


def test_every_script_is_used_by_the_code():
    root = resources.files("meterworker")
    code = "".join(p.read_text() for p in Path(str(root)).rglob("*.py"))
    used = re.findall(r'register\(r, __package__, "([a-z_]+\.lua)"\)', code)
    assert sorted(used) == sorted(n for _, n in lua_files() if n not in INCLUDES)


def test_the_outbox_per_batch_keys_are_pinned_and_documented():
    k = Keys("c")
    assert k.outbox_batch_data == "meterworker:c:outbox:batch-data"
    assert k.outbox_ready == "meterworker:c:outbox:ready"
    assert k.outbox_open == "meterworker:c:outbox:open"
    assert k.outbox_stats == "meterworker:c:outbox:stats"
    assert k.outbox_tick("q", "1764237600") == "meterworker:c:outbox:tick:q:1764237600"
    k = Keys("{c}")
    built = [k.outbox_batch_data, k.outbox_ready, k.outbox_open, k.outbox_stats, k.outbox_tick("{q}", "{tick}")]
    assert [key for key in built if not re.search(rf"^\s*{re.escape(key)}(\s|$)", keys.__doc__, re.MULTILINE)] == []
