"""An error no verdict foresaw in a real send worker (issue 13, class 2): the events end in the dead-letter
store with the error as their reason after the configured retries, never pending silently.

The worker runs meterworker unchanged; a sitecustomize on its PYTHONPATH (the one way into a separate
process) makes one call fail: `raise` makes Sender.post itself raise (what the send task's catch-all is
for), `header` gives the request a header value HTTP cannot carry (a line break), which the HTTP client refuses."""

import json
import os
import subprocess
import time

import pytest

from tests.support import OpenMeterSink
from tests.support.mwproc import meterworker, wait_until
from tests.test_delivery_workers import TOKEN, SendSide, tick_of

INJECT = '''
import os

_how = os.environ.get("MW_TEST_INJECT")
if _how:
    from meterworker.delivery import sender as _sender

    if _how == "raise":
        def _post(self, events):
            raise RuntimeError("injected: an error no verdict foresaw")

        _sender.Sender.post = _post
    elif _how == "header":
        _init = _sender.Sender.__init__

        def _init_bad_header(self, *args, **kwargs):
            _init(self, *args, **kwargs)
            self._headers["X-Tenant"] = "acme\\r\\nX-Evil: 1"

        _sender.Sender.__init__ = _init_bad_header
'''


@pytest.mark.parametrize("how, reason", [
    ("raise", "gave up after 3 attempts: unexpected error: RuntimeError: injected: an error no verdict foresaw"),
    ("header", "gave up after 3 attempts: cannot send the request: ValueError: Invalid header value")])
def test_an_unforeseen_send_error_is_retried_then_dead_lettered_with_its_reason(tmp_path, redis_url, how, reason):
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(INJECT)
    with OpenMeterSink(token=TOKEN) as sink:
        side = SendSide(tmp_path, sink, redis_url, {"retries": 2, "retry_period": "200ms",
                                                    "max_retry_backoff": "400ms",
                                                    "batching": {"count": 8, "period": "200ms"}})
        try:
            side.enqueue(tick_of(queries=1, series=8))  # before the fault: enqueueing is not what fails
            side.env.update({"PYTHONPATH": str(inject), "MW_TEST_INJECT": how})
            worker = side.worker("send")
            wait_until(lambda: side.dlq("list").stdout.count(" q0 ") >= 1, 60, "the dead-letter entry", worker)
            time.sleep(1)
            listed = side.dlq("list").stdout
            entries = [line.split()[0] for line in listed.splitlines()[1:-1]]
            shown = [json.loads(side.dlq("show", e).stdout) for e in entries]
            status = subprocess.run(meterworker("status", "-c", str(side.cfg)), capture_output=True, text=True,
                                    env={**os.environ, **side.env}, timeout=60)
            log = worker.output()
        finally:
            side.stop()
    assert sorted(ev["id"] for entry in shown for ev in entry["events"]) == sorted(
        f"q0-1795860000-{n}" for n in range(8)), listed
    for entry in shown:
        assert entry["reason"].startswith(reason) and entry["attempts"] == 3, entry  # retries: 2
        assert TOKEN not in json.dumps(entry)
    if how == "raise":
        assert sink.requests == []  # nothing was ever posted
    assert "outbox: 0 events pending" in status.stdout and "dead-letter entries: 1" in status.stdout, status.stdout
    assert log.count(reason.split(": ", 1)[1].split(": ", 1)[1]) >= 3, log  # each attempt's reason, logged
    assert TOKEN not in log
