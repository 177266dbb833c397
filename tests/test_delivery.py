import json

import httpx

from types import SimpleNamespace

from meterworker.delivery.driver import Driver, Tally, steps
from meterworker.delivery.records import InProcessRecord
from meterworker.delivery.sender import Sender
from meterworker.delivery.verdicts import Response, Verdict, classify, give_up_reason


def ev(i, bad=False):
    return {"id": f"e{i}", "source": "prometheus", "bad": bad}


class Waits(InProcessRecord):
    """Records in memory like a command; a retry waits elsewhere, as a send worker's does."""

    def __init__(self):
        super().__init__()
        self.waiting, self.delay, self.dead = [], None, []

    def retry_later(self, items, delay):
        self.waiting, self.delay = [i.event for i in items], delay
        return False

    def dead_lettered(self, items, failure):
        self.dead.append(([i.event for i in items], failure))
        return super().dead_lettered(items, failure)


def config(drop_on=(400,), error_patterns=(), retries=3):
    http = SimpleNamespace(drop_on=list(drop_on), retries=retries, retry_period=15.0, max_retry_backoff=60.0)
    return SimpleNamespace(http=http, error_patterns=list(error_patterns), output=SimpleNamespace(label=None))


def deliver(events, post, drop_on, error_patterns):
    record = Waits()
    result = Driver(config(drop_on, error_patterns), post, Tally()).deliver(
        "test", InProcessRecord.items(events, "q", 1), record)
    return result, record


def sink_rejecting_bad(calls):
    def post(batch):
        calls.append([e["id"] for e in batch])
        if any(e["bad"] for e in batch):
            return Response(400, '{"title":"Bad Request","detail":"event e7: subject is required"}')
        return Response(204, "")
    return post


def test_classify():
    assert classify(Response(204, ""), [400], []) is Verdict.OK
    assert classify(Response(400, ""), [400], []) is Verdict.DROP
    assert classify(Response(503, ""), [400], []) is Verdict.RETRY
    assert classify(Response(429, ""), [400], []) is Verdict.RETRY
    assert classify(Response(None, "", error="connection refused"), [400], ["refused"]) is Verdict.RETRY
    assert classify(Response(422, "Bad Request: x"), [400], ["Bad Request"]) is Verdict.DROP
    assert classify(Response(400, ""), [], ["Bad Request"]) is Verdict.DROP


def test_a_bad_event_is_isolated_and_the_rest_delivered():
    calls = []
    events = [ev(i, bad=(i == 7)) for i in range(100)]
    out, record = deliver(events, sink_rejecting_bad(calls), [400], [])
    assert out.delivered == 99
    assert [e["id"] for events, _ in record.dead for e in events] == ["e7"]
    failure = record.dead[0][1]
    assert failure.response.status == 400 and "subject is required" in failure.response.body
    assert not record.waiting and out.waiting == 0
    assert len(calls) < 20


def test_retryable_failure_keeps_the_whole_batch_for_retry():
    out, record = deliver([ev(1), ev(2)], lambda b: Response(503, "down", retry_after=5), [400], [])
    assert [e["id"] for e in record.waiting] == ["e1", "e2"]
    assert record.delay >= 5 and not out.delivered


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

    out, record = deliver([ev(i) for i in range(100)], post, [400], [])
    assert calls == [100]
    [(events, failure)] = record.dead
    assert len(events) == 100 and failure.reason == "rejected with HTTP 401 Unauthorized"


def test_a_retryable_failure_while_splitting_keeps_every_unsettled_event_for_the_retry():
    answers = iter([Response(400, "bad"), Response(204, ""), Response(503, "down")])
    got = list(steps([ev(i) for i in range(4)], lambda b: next(answers), [400], []))
    assert [(s.verdict, [e["id"] for e in s.events]) for s in got] == [
        (Verdict.SPLIT, ["e0", "e1", "e2", "e3"]), (Verdict.OK, ["e0", "e1"]), (Verdict.RETRY, ["e2", "e3"])]


def test_a_response_matching_an_error_pattern_names_the_pattern():
    out, record = deliver([ev(1)], lambda b: Response(422, "Bad Request: no subject"), [400], ["Bad Request"])
    assert record.dead[0][1].reason == ("rejected: the response (HTTP 422 Unprocessable Entity) matches "
                                        "error pattern 'Bad Request'")


def test_in_process_retries_sleep_then_give_up_with_one_reason():
    slept, calls = [], []

    def post(batch):
        calls.append(len(batch))
        return Response(503, "down")

    record = InProcessRecord(sleep=slept.append)
    tally = Tally()
    result = Driver(config(retries=2), post, tally).deliver("test", InProcessRecord.items([ev(1), ev(2)], "q", 1),
                                                          record)
    assert calls == [2, 2, 2] and len(slept) == 2
    assert (result.delivered, result.dead, result.waiting, result.complete) == (0, 2, 0, False)
    assert (tally.dead, tally.retries) == (2, 2)
    assert give_up_reason(3, Response(503, "")) == "gave up after 3 attempts: HTTP 503 Service Unavailable"


def test_each_call_reports_only_its_own_events():
    answers = iter([Response(400, "bad"), Response(204, "")])
    driver = Driver(config(), lambda b: next(answers), Tally())
    first = driver.deliver("t1", InProcessRecord.items([ev(1)], "q", 1), InProcessRecord())
    second = driver.deliver("t2", InProcessRecord.items([ev(2)], "q", 2), InProcessRecord())
    assert (first.complete, second.complete) == (False, True)


def test_the_output_label_is_a_field_of_the_delivery_log_lines(caplog):
    cfg = config()
    cfg.output.label = "openmeter"
    with caplog.at_level("INFO", logger="meterworker.delivery.driver"):
        Driver(cfg, lambda b: Response(204, ""), Tally()).deliver("t", InProcessRecord.items([ev(1)], "q", 1),
                                                                  InProcessRecord())
    assert caplog.records and all(r.output == "openmeter" for r in caplog.records)
