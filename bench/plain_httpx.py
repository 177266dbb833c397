"""A Celery worker of meterworker whose Sender posts through httpx's own transport instead of
meterworker.delivery.http11's: what `bench throughput --http both` measures the fast transport against.

    python -m bench.plain_httpx worker -Q query,send ...   (as `celery -A meterworker worker ...`;
                                                            $METERWORKER_CONFIG names the config)
"""

import sys

from meterworker.delivery import http11

http11.direct = lambda url: False  # the Sender then leaves the transport to httpx, as it does behind a proxy

from celery.__main__ import main  # noqa: E402

sys.argv = ["celery", "-A", "meterworker", *sys.argv[1:]]
main()
