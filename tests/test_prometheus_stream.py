"""parse_stream's fast path (Prometheus' compact vectors, parsed with orjson) gives what ijson gives."""

import json

import ijson
import pytest
from hypothesis import given, settings, strategies as st

from meterworker.query import prometheus
from meterworker.query.prometheus import MalformedResult, parse_stream

text = st.lists(st.sampled_from(list('ab,{}[]":\\é\n') + ['{"metric":', '}]', ',{"metric":{']),
                max_size=6).map("".join)
labels = st.dictionaries(st.sampled_from(["instance", "job", "a", "__name__"]), text, max_size=4)
series = st.lists(st.tuples(labels, st.sampled_from(["1", "0.5", "NaN", "+Inf", "12345678.25"])), max_size=6)


def body(result, extra=None, separators=(",", ":")):
    doc = {"status": "success", "data": {"resultType": "vector",
                                         "result": [{"metric": m, "value": [1767225600.5, v]} for m, v in result]}}
    doc.update(extra or {})
    return json.dumps(doc, separators=separators).encode()


def chunked(raw, size):
    return [raw[i:i + size] for i in range(0, len(raw), size)]


def by_ijson(raw):
    return [(s.get("metric") or {}, s["value"][1]) for s in ijson.items(raw, "data.result.item", use_float=True)]


@settings(max_examples=200, deadline=None)
@given(series, st.integers(1, 50), st.booleans())
def test_fast_path_gives_what_ijson_gives(result, size, warnings):
    raw = body(result, {"warnings": ["w"]} if warnings else None)
    got = parse_stream(chunked(raw, size))
    assert got.result_type == "vector"
    assert list(got.series) == by_ijson(raw) == [(m, v) for m, v in result]


def test_the_fast_path_is_taken_for_compact_vectors_and_ijson_otherwise(monkeypatch):
    used = []
    real = prometheus._fast_series
    monkeypatch.setattr(prometheus, "_fast_series", lambda *a: used.append(1) or real(*a))
    result = [({"instance": "a"}, "1"), ({"instance": "b"}, "2")]
    assert list(parse_stream([body(result)]).series) == result
    assert used == [1]
    assert list(parse_stream([body(result, separators=(", ", ": "))]).series) == result
    assert used == [1]


@pytest.mark.parametrize("cut", [-1, -2, -3, -10, -30])
def test_a_truncated_vector_is_an_error(cut):
    raw = body([({"instance": "a"}, "1"), ({"instance": "b}]"}, "2")])[:cut]
    with pytest.raises((MalformedResult, ijson.JSONError)):
        list(parse_stream(chunked(raw, 7)).series)


def test_a_vector_in_another_layout_with_no_separator_goes_to_ijson(monkeypatch):
    monkeypatch.setattr(prometheus, "_FIRST_PIECE_LIMIT", 64)
    result = [({"instance": f"i{n}"}, str(n)) for n in range(20)]
    raw = body(result).replace(b'},{"metric":', b'}, {"metric":')  # compact, but for the separators
    assert list(parse_stream(chunked(raw, 16)).series) == result


def test_an_empty_vector():
    assert list(parse_stream([body([])]).series) == []
    assert list(parse_stream(chunked(body([]), 1)).series) == []
