from datetime import datetime, timezone
from urllib.parse import parse_qs

import httpx
import pytest

from meterworker.config import parse_config
from meterworker.query.prometheus import PrometheusClient, PrometheusError

AT = datetime(2026, 11, 27, 10, 0, 30, tzinfo=timezone.utc)


def prom_cfg(**extra):
    data = {
        "input": {"prometheus": {"url": "http://prom.test:9090/", "queries": [{"query": {"name": "q", "promql": "up"}}],
                                 **extra}},
        "output": {"http_client": {"url": "http://sink.test/api/v1/events"}},
    }
    return parse_config(data, environ={}).config.input.prometheus


def client(handler, **extra):
    return PrometheusClient(prom_cfg(**extra), transport=httpx.MockTransport(handler))


def ok(data):
    return httpx.Response(200, json={"status": "success", "data": data})


def query(client, promql, at):
    """What the query task reads of the response: its result type and series."""
    with client.stream(promql, at) as got:
        return {"resultType": got.result_type, "series": list(got.series)}


def test_posts_the_query_at_the_evaluation_time_with_headers_and_auth():
    seen = {}

    def handler(request):
        seen["url"] = str(request.url)
        seen["form"] = parse_qs(request.content.decode())
        seen["headers"] = request.headers
        return ok({"resultType": "vector", "result": []})

    data = query(client(handler, headers={"X-Scope-OrgID": "tenant-1"}, basic_auth={"username": "u", "password": "p"}),
                 "sum(up)", AT)
    assert data == {"resultType": "vector", "series": []}
    assert seen["url"] == "http://prom.test:9090/api/v1/query"
    assert seen["form"]["query"] == ["sum(up)"] and float(seen["form"]["time"][0]) == AT.timestamp()
    assert seen["headers"]["x-scope-orgid"] == "tenant-1"
    assert seen["headers"]["authorization"] == "Basic dTpw"


def test_bearer_token():
    seen = {}

    def handler(request):
        seen["auth"] = request.headers["authorization"]
        return ok({"resultType": "scalar", "result": [0, "1"]})

    query(client(handler, bearer_token="tok"), "1", AT)
    assert seen["auth"] == "Bearer tok"


def test_prometheus_errors_carry_its_message():
    def handler(request):
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data",
                                         "error": "1:9: parse error: unclosed left parenthesis"})

    with pytest.raises(PrometheusError, match="bad_data.*unclosed left parenthesis") as e:
        query(client(handler), "sum(up", AT)
    assert e.value.status == 400


def test_a_non_prometheus_answer_is_named():
    with pytest.raises(PrometheusError, match="HTTP 502.*not a Prometheus API response"):
        query(client(lambda r: httpx.Response(502, text="<html>bad gateway</html>")), "up", AT)


def test_unreachable_and_timeout():
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    def slow(request):
        raise httpx.ReadTimeout("timed out")

    with pytest.raises(PrometheusError, match="cannot reach http://prom.test:9090"):
        query(client(refuse), "up", AT)
    with pytest.raises(PrometheusError, match="timed out after 30s"):
        query(client(slow), "up", AT)


def test_tls_verification_is_on_unless_turned_off(tmp_path):
    from meterworker.query.prometheus import _verify

    assert _verify(prom_cfg()) is True
    assert _verify(prom_cfg(tls={"skip_cert_verify": True})) is False
    import ssl

    import certifi

    ctx = _verify(prom_cfg(tls={"root_cas_file": certifi.where()}))
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.cert_store_stats()["x509_ca"] > 0


def stream_of(body: bytes, chunk=7):
    def handler(request):
        return httpx.Response(200, content=iter([body[i:i + chunk] for i in range(0, len(body), chunk)]))
    return handler


def test_stream_yields_series_one_by_one():
    body = (b'{"status":"success","data":{"resultType":"vector","result":['
            b'{"metric":{"instance":"a"},"value":[1764237630.5,"1.5"]},'
            b'{"metric":{},"value":[1764237630.5,"NaN"]}]}}')
    with client(stream_of(body)).stream("x", AT) as got:
        assert got.result_type == "vector"
        assert list(got.series) == [({"instance": "a"}, "1.5"), ({}, "NaN")]


def test_stream_scalar_and_matrix():
    scalar = b'{"status":"success","data":{"resultType":"scalar","result":[1764237630,"7"]}}'
    with client(stream_of(scalar)).stream("1", AT) as got:
        assert (got.result_type, list(got.series)) == ("scalar", [({}, "7")])
    matrix = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
    with pytest.raises(Exception, match="range vector"):
        with client(stream_of(matrix)).stream("x[1m]", AT):
            pass


def test_stream_errors_are_prometheus_errors():
    def bad(request):
        return httpx.Response(422, json={"status": "error", "errorType": "execution", "error": "too many samples"})

    with pytest.raises(PrometheusError, match="execution.*too many samples"):
        with client(bad).stream("x", AT):
            pass
    truncated = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a"},"val'
    with pytest.raises(PrometheusError, match="malformed response"):
        with client(stream_of(truncated)).stream("x", AT) as got:
            list(got.series)


def test_a_url_with_a_path_prefix_and_a_query_string():
    """Mimir's `/prometheus`, Cortex's `/api/prom`: the API is requested under the prefix, and a query
    string in `url` stays a query string."""
    from tests.support.prefixed_api import PrefixedApi

    series = [{"metric": {"instance": "a"}, "value": [AT.timestamp(), "2"]}]
    with PrefixedApi("/prometheus", result=series) as api:
        for url in (api.url, api.url + "/", api.url + "?x=1", api.url + "/?x=1"):
            cfg = prom_cfg(url=url, headers={"X-Scope-OrgID": "tenant-1"})
            prom = PrometheusClient(cfg)
            try:
                with prom.stream("up", AT) as got:
                    assert list(got.series) == [({"instance": "a"}, "2")]
            finally:
                prom.close()
        assert [r.path for r in api.requests] == ["/prometheus/api/v1/query"] * 4
        assert [r.query for r in api.requests] == ["", "", "x=1", "x=1"]
        assert all(r.headers["X-Scope-OrgID"] == "tenant-1" and r.form["query"] == ["up"] for r in api.requests)


def test_a_wrong_prefix_is_named_in_the_error():
    from tests.support.prefixed_api import PrefixedApi

    with PrefixedApi("/prometheus") as api:
        prom = PrometheusClient(prom_cfg(url=api.url.replace("/prometheus", "/api/prom")))
        with pytest.raises(PrometheusError, match="not_found.*no such path /api/prom/api/v1/query"):
            with prom.stream("up", AT):
                pass


def test_a_partial_response_is_refused():
    """VictoriaMetrics cluster answers `isPartial: true` when storage nodes are missing: usage not billed."""
    partial = (b'{"status":"success","isPartial":true,"data":{"resultType":"vector","result":['
               b'{"metric":{"instance":"a"},"value":[1764237630.5,"1.5"]}]}}')
    with pytest.raises(PrometheusError, match="partial response"):
        with client(stream_of(partial)).stream("x", AT) as got:
            list(got.series)
    whole = partial.replace(b'"isPartial":true', b'"isPartial":false')
    with client(stream_of(whole)).stream("x", AT) as got:
        assert list(got.series) == [({"instance": "a"}, "1.5")]
