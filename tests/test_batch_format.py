"""A batch's events as the outbox writes them: each event's JSON exactly as orjson writes it alone, told
apart correctly whatever the events hold, and read back with their query, tick and digest."""

import hashlib

import orjson
from hypothesis import given, settings, strategies as st

from meterworker.delivery.batch_format import batch_items, event_jsons, segment

text = st.lists(st.sampled_from(['"', "\\", "}", "{", ",", ":", "[", "]", "a", "é", "\n", "specversion"]),
                max_size=6).map("".join)
value = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                     max_leaves=8)
event = st.fixed_dictionaries({"specversion": st.just("1.0"), "id": text}, optional={"data": value})
mixed = st.dictionaries(text, value, max_size=3)


def expected(events):
    """Each event encoded alone, and the offset of each in their ","-joined text."""
    parts = [orjson.dumps(e) for e in events]
    offsets = [sum(len(p) + 1 for p in parts[:i]) for i in range(len(parts))]
    return b",".join(parts), offsets


@settings(max_examples=300, deadline=None)
@given(st.lists(event | mixed, max_size=8))
def test_each_event_is_told_apart_as_if_encoded_alone(events):
    assert event_jsons(events) == expected(events)


def test_an_event_that_holds_the_boundary_text_itself():
    sneaky = [{"specversion": "1.0", "id": "a", "data": [{"x": 1}, {"specversion": "2"}]}, {"other": 1}]
    assert event_jsons(sneaky) == expected(sneaky)
    sneaky[1] = {"specversion": "1.0"}
    assert event_jsons(sneaky) == expected(sneaky)


def test_items_come_back_with_their_query_tick_digest_and_event():
    events = [{"specversion": "1.0", "id": str(i), "source": "s"} for i in range(5)]
    blob, _ = event_jsons(events)
    digests = [hashlib.blake2b(f"s\0{i}".encode(), digest_size=8).digest() for i in range(5)]
    segments = b"2:" + segment("q1", 60) + b"\n3:" + segment("q2", 120) + b"\n"
    items, whole = batch_items(blob, b"".join(digests), segments)
    assert [(i.query, i.tick, i.digest, i.event["id"]) for i in items] == [
        ("q1", 60, digests[0], "0"), ("q1", 60, digests[1], "1"),
        ("q2", 120, digests[2], "2"), ("q2", 120, digests[3], "3"), ("q2", 120, digests[4], "4")]
    assert orjson.loads(whole.body()) == events
    left, _ = batch_items(blob, b"".join(digests), segments, settled=digests[1] + digests[4])
    assert [i.event["id"] for i in left] == ["0", "2", "3"]
