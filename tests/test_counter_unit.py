"""Counter mode's pure parts: the selector parser, the growth rule, the boundary shortcut, the config fields."""

import itertools
import random
from datetime import datetime, timezone

import pytest

from meterworker.config import ConfigError, parse_config
from meterworker.query.counter.compute import Gaps, Plan, _raw_samples, group, series_growth
from meterworker.query.counter.plan import Window
from meterworker.query.mapping import ResultTypeError
from meterworker.query.counter.growth import Start, boundary_growth, growth
from meterworker.query.counter.selector import SelectorError, parse_selector

ENV = {}


def config(query: dict) -> dict:
    return {
        "input": {"prometheus": {"url": "http://prometheus:9090", "queries": [{"query": {"name": "q", **query}}]}},
        "output": {"http_client": {"url": "http://openmeter:8888/api/v1/events"}},
    }


def problem(query: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(config(query), ENV)
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


# --- the selector ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, metric, matchers", [
    ('http_requests_total{job="api", code!~"5.."}', "http_requests_total", [("job", "=", "api"), ("code", "!~", "5..")]),
    ("up", "up", []),
    ('{__name__="up", job=~"a|b"}', "up", [("job", "=~", "a|b")]),
    ("x{a='q\\'uote', b=\"tab\\t\", c=`raw\\n`}", "x", [("a", "=", "q'uote"), ("b", "=", "tab\t"), ("c", "=", "raw\\n")]),
    ('x{a!="",}', "x", [("a", "!=", "")]),
    ('x{a="\\u00e9\\x41"}', "x", [("a", "=", "éA")]),
])
def test_plain_selectors_parse(text, metric, matchers):
    sel = parse_selector(text)
    assert sel.metric == metric
    assert [(m.label, m.op, m.value) for m in sel.matchers] == matchers
    again = parse_selector(sel.promql())  # the canonical spelling means the same
    assert again == sel


@pytest.mark.parametrize("text, says", [
    ("rate(x[1m])", "a function call"),
    ("increase(x[5m])", "a function call"),
    ("sum(x)", "an aggregation"),
    ("sum by (a) (x)", "an aggregation"),
    ("x[5m]", "a range selector"),
    ("x offset 5m", "an offset or @ modifier"),
    ("x @ 100", "an offset or @ modifier"),
    ("x + y", "an operator"),
    ("x{a=\"b\"} / 2", "an operator"),
    ("{}", "needs a metric name"),
    ('{a=~".*"}', "needs a metric name"),
    ('x{a="b"', "not closed"),
    ('x{a=b}', "quoted label value"),
    ('x{a~"b"}', "expected one of"),
    ('x{a=~"("}', "regular expression"),
    ('x{a="\\q"}', "unknown escape"),
    ("", "empty"),
])
def test_what_is_not_a_selector_is_refused_saying_what_it_is(text, says):
    with pytest.raises(SelectorError, match=says):
        parse_selector(text)


# --- the growth rule ---------------------------------------------------------------------------

def oracle(previous, samples):
    """The issue's rule, written out: v - prev when v >= prev, else v."""
    total = 0
    for v in samples:
        total += v - previous if v >= previous else v
        previous = v
    return total


def test_growth_counts_resets_as_growth_from_zero():
    assert growth(10.0, [12.0, 15.0, 3.0, 7.0], start=Start.CONTINUED).value == 2 + 3 + 3 + 4
    assert growth(10.0, [12.0, 15.0, 3.0, 7.0], start=Start.CONTINUED).resets == 1
    assert growth(10.0, [], start=Start.CONTINUED).value == 0
    assert growth(10.0, [10.0, 10.0], start=Start.CONTINUED).value == 0


def test_a_new_series_counts_from_zero_or_is_skipped_and_a_gap_is_never_billed_across():
    assert growth(None, [5.0, 8.0], start=Start.NEW).value == 8
    assert growth(None, [5.0, 8.0], start=Start.NEW, count_new=False).value == 3
    assert growth(None, [5.0, 8.0], start=Start.GAP).value == 3
    assert growth(None, [5.0, 8.0], start=Start.GAP, count_new=True).value == 3
    with pytest.raises(ValueError):
        growth(None, [1.0], start=Start.CONTINUED)


def test_windows_add_up_to_the_growth_of_the_whole_run_exactly():
    rng = random.Random(12)
    for _ in range(200):
        values, v = [], rng.randrange(0, 1000)
        for _ in range(rng.randrange(1, 60)):
            v = rng.randrange(0, 50) if rng.random() < 0.1 else v + rng.randrange(0, 1000)
            values.append(float(v))
        base, rest = values[0], values[1:]
        cuts = sorted(rng.sample(range(len(rest) + 1), k=min(len(rest) + 1, rng.randrange(1, 6))))
        total, prev = 0.0, base
        for a, b in itertools.pairwise([0, *cuts, len(rest)]):
            total += growth(prev, rest[a:b], start=Start.CONTINUED).value
            prev = rest[b - 1] if b > a else prev
        assert total == oracle(base, rest)
        assert total == int(total)


def test_the_boundary_shortcut_agrees_with_the_samples_when_the_window_has_no_reset_after_its_first_sample():
    rng = random.Random(7)
    for _ in range(500):
        base = float(rng.randrange(0, 100))
        first = float(rng.randrange(0, 200))
        samples = [first]
        for _ in range(rng.randrange(0, 8)):
            samples.append(samples[-1] + rng.randrange(0, 20))
        for start, b, count_new in ((Start.CONTINUED, base, True), (Start.NEW, None, True),
                                    (Start.NEW, None, False), (Start.GAP, None, True)):
            slow = growth(b, samples, start=start, count_new=count_new).value
            assert boundary_growth(b, samples[-1], min(samples), start=start, count_new=count_new) == slow


def test_by_sums_per_group_and_each_series_alone_without_by():
    series = [({"customer": "a", "pod": "1"}, 1.0), ({"customer": "b", "pod": "1"}, 2.0),
              ({"customer": "a", "pod": "2"}, 3.0)]
    assert list(group(iter(series), None)) == series
    assert list(group(iter(series), ["customer"])) == [({"customer": "a"}, 4.0), ({"customer": "b"}, 2.0)]


# --- the config ----------------------------------------------------------------------------------

def test_a_counter_query_loads_with_its_defaults():
    q = parse_config(config({"counter": 'http_requests_total{job="api"}', "by": ["instance"]}), ENV).config.queries[0]
    assert (q.counter, q.promql, q.by, q.max_gap, q.new_series, q.is_counter) == (
        'http_requests_total{job="api"}', None, ["instance"], 3600.0, "count", True)
    q = parse_config(config({"counter": "x", "max_gap": "90m", "new_series": "skip"}), ENV).config.queries[0]
    assert (q.by, q.max_gap, q.new_series) == (None, 5400.0, "skip")


@pytest.mark.parametrize("query, expected", [
    ({"counter": "rate(x[1m])"}, "input.prometheus.queries[0].query.counter: not a series selector: a function call"),
    ({"counter": "sum(x)"}, "input.prometheus.queries[0].query.counter: not a series selector: an aggregation"),
    ({"counter": "x[5m]"}, "input.prometheus.queries[0].query.counter: not a series selector: a range selector"),
    ({"counter": "x offset 1m"}, "input.prometheus.queries[0].query.counter: not a series selector: an offset"),
    ({"counter": "x", "promql": "up"}, "input.prometheus.queries[0].query: a query needs exactly one of promql and "
                                       "counter; both are given"),
    ({"promql": "up", "by": ["instance"]}, "input.prometheus.queries[0].query: by only apply to a counter query"),
    ({"counter": "x", "max_gap": "soon"}, "input.prometheus.queries[0].query.max_gap: invalid duration 'soon'"),
    ({"counter": "x", "max_gap": "0s"}, "input.prometheus.queries[0].query.max_gap: must be greater than zero"),
    ({"counter": "x", "new_series": "bill"}, "input.prometheus.queries[0].query.new_series: input should be"),
    ({"counter": "x", "by": ["instance", "a-b"]}, "input.prometheus.queries[0].query.by: 'a-b' is not a label name"),
    ({"counter": "x", "by": ["customer"]}, "input.prometheus.queries[0].query.by: ['customer'] lacks the subject "
                                           "label 'instance'"),
])
def test_a_broken_counter_query_names_the_field(query, expected):
    assert problem(query).startswith(expected)


def _boundary_answers(series):
    """series_growth's Prometheus calls answered from (labels, at_start, at_end) triples: no resets flagged."""
    start, end = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc), datetime(2026, 12, 1, 10, 1, tzinfo=timezone.utc)

    def instant(promql, at):
        if promql.startswith("resets(") or " unless " in promql:
            return []  # flagged_query, unbased_query: no resets, every series has a baseline
        return [(labels, str(b - a)) for labels, a, b in series]  # boundary_query

    return start, end, instant, (lambda promql, at: [])


def test_the_metric_name_is_dropped_from_a_series_labels_on_every_path():
    series = [({"__name__": "calls_total", "customer": "a"}, 10, 15)]
    start, end, instant, matrix = _boundary_answers(series)
    fast = list(series_growth(Plan.of("calls_total", start, end, 3600), instant, matrix, Gaps()))
    assert fast == [({"customer": "a"}, 5.0)]


def test_series_differing_only_by_metric_name_are_an_error_not_one_bill():
    series = [({"__name__": "a_total", "customer": "x"}, 1, 2), ({"__name__": "b_total", "customer": "x"}, 5, 9)]
    start, end, instant, matrix = _boundary_answers(series)
    plan = Plan.of('{__name__=~"a_total|b_total"}', start, end, 3600)
    with pytest.raises(ResultTypeError, match="differ only by metric name"):
        list(series_growth(plan, instant, matrix, Gaps()))


def test_staleness_markers_among_raw_samples_are_not_counts():
    """VictoriaMetrics answers `x[d]` with the NaN staleness markers its scraper wrote (a failed scrape)."""
    start, end = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc), datetime(2026, 12, 1, 10, 1, tzinfo=timezone.utc)
    t0 = start.timestamp()
    raw = [({"customer": "a"}, [[t0 + 10, "2"], [t0 + 20, "NaN"], [t0 + 40, "7"]])]
    samples = _raw_samples("calls_total", Window(start, end, 3600), lambda promql, at: raw)
    assert samples == {(("customer", "a"),): [2.0, 7.0]}
