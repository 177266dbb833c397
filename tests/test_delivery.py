import json

import httpx

from meterworker.delivery.sender import Response, Sender, attempt, classify, deliver


def ev(i, bad=False):
    return {"id": f"e{i}", "source": "prometheus", "bad": bad}


def sink_rejecting_bad(calls):
    def post(batch):
        calls.append([e["id"] for e in batch])
        if any(e["bad"] for e in batch):
            return Response(400, '{"title":"Bad Request","detail":"event e7: subject is required"}')
        return Response(204, "")
    return post


def test_classify():
    assert classify(Response(204, ""), [400], []) == "ok"
    assert classify(Response(400, ""), [400], []) == "drop"
    assert classify(Response(503, ""), [400], []) == "retry"
    assert classify(Response(429, ""), [400], []) == "retry"
    assert classify(Response(None, "", error="connection refused"), [400], ["refused"]) == "retry"
    assert classify(Response(422, "Bad Request: x"), [400], ["Bad Request"]) == "drop"
    assert classify(Response(400, ""), [], ["Bad Request"]) == "drop"


def test_a_bad_event_is_isolated_and_the_rest_delivered():
    calls = []
    events = [ev(i, bad=(i == 7)) for i in range(100)]
    out = deliver(events, sink_rejecting_bad(calls), [400], [])
    assert len(out.delivered) == 99
    assert [e["id"] for r in out.rejected for e in r.events] == ["e7"]
    assert out.rejected[0].status == 400 and "subject is required" in out.rejected[0].body
    assert not out.retry
    assert len(calls) < 20


def test_retryable_failure_keeps_the_whole_batch_for_retry():
    out = deliver([ev(1), ev(2)], lambda b: Response(503, "down", retry_after=5), [400], [])
    assert [e["id"] for e in out.retry] == ["e1", "e2"]
    assert out.retry_after == 5 and not out.delivered


class Cfg:
    url = "http://sink.test/api/v1/events"
    verb = "POST"
    timeout = 5.0
    dump_request_log_level = None

    def __init__(self, headers):
        self.headers = headers


def test_sender_posts_a_json_array_with_the_batch_content_type():
    seen = {}

    def handler(request):
        seen["ct"] = request.headers["content-type"]
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        return httpx.Response(204)

    s = Sender(Cfg({"Authorization": "Bearer t0k"}), transport=httpx.MockTransport(handler))
    r = s.post([ev(1)])
    assert r.status == 204
    assert seen == {"ct": "application/cloudevents-batch+json", "auth": "Bearer t0k", "body": [ev(1)]}


def test_sender_keeps_the_configured_content_type():
    seen = {}

    def handler(request):
        seen["ct"] = request.headers["content-type"]
        return httpx.Response(200)

    Sender(Cfg({"Content-Type": "application/json"}), transport=httpx.MockTransport(handler)).post([ev(1)])
    assert seen["ct"] == "application/json"


def test_a_refusal_not_caused_by_the_events_is_not_split():
    calls = []

    def post(batch):
        calls.append(len(batch))
        return Response(401, '{"detail":"invalid token"}')

    out = deliver([ev(i) for i in range(100)], post, [400], [])
    assert calls == [100]
    [rejected] = out.rejected
    assert len(rejected.events) == 100 and rejected.reason == "rejected with HTTP 401 Unauthorized"


def test_a_retryable_failure_while_splitting_keeps_every_unsettled_event_for_the_retry():
    answers = iter([Response(400, "bad"), Response(204, ""), Response(503, "down")])
    steps = list(attempt([ev(i) for i in range(4)], lambda b: next(answers), [400], []))
    assert [(s.verdict, [e["id"] for e in s.events]) for s in steps] == [
        ("split", ["e0", "e1", "e2", "e3"]), ("ok", ["e0", "e1"]), ("retry", ["e2", "e3"])]


def test_a_response_matching_an_error_pattern_names_the_pattern():
    out = deliver([ev(1)], lambda b: Response(422, "Bad Request: no subject"), [400], ["Bad Request"])
    assert out.rejected[0].reason == ("rejected: the response (HTTP 422 Unprocessable Entity) matches "
                                      "error pattern 'Bad Request'")
