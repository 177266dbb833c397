"""Whole-request deadlines for HTTP. httpx's timeouts bound each network operation on its own, so a server
that trickles a byte every now and then keeps a request for ever; here the time a request spends waiting
on the network (connect, TLS, writes, reads: everything but the caller's own work between reads) adds up
to at most its deadline.

`with deadline(seconds):` sets the deadline for the requests made inside it, in this thread; httpx's
transport (`transport()`) and http11.Transport keep to it. Each operation waits at most what is left,
and one that finds nothing left fails as a timeout of its phase.
"""

from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import httpcore
import httpx

T = TypeVar("T")

_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("meterworker_deadline", default=None)


class Budget:
    """What is left of one request's deadline, in seconds of waiting on the network."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.left = seconds

    def spend(self, operation: Callable[[float | None], T], timeout: float | None, expired: type[Exception]) -> T:
        """Run `operation(timeout)` with the timeout cut to what is left, and count the time it took."""
        if self.left <= 0:
            raise expired(f"the request's deadline of {self.seconds:g}s passed")
        limit = self.left if timeout is None else min(timeout, self.left)
        start = time.monotonic()
        try:
            return operation(None if limit == float("inf") else limit)
        finally:
            self.left -= time.monotonic() - start


def current() -> Budget | None:
    return _current.get()


@contextmanager
def deadline(seconds: float) -> Iterator[Budget]:
    budget = Budget(seconds)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def _spend(operation: Callable[[float | None], T], timeout: float | None, expired: type[Exception]) -> T:
    budget = _current.get()
    return operation(timeout) if budget is None else budget.spend(operation, timeout, expired)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _spend(lambda t: self._inner.read(max_bytes, t), timeout, httpcore.ReadTimeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _spend(lambda t: self._inner.write(buffer, t), timeout, httpcore.WriteTimeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        return _Stream(_spend(lambda t: self._inner.start_tls(ssl_context, server_hostname, t), timeout,
                              httpcore.ConnectTimeout))

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _Stream(_spend(lambda t: self._inner.connect_tcp(host, port, t, local_address, socket_options),
                              timeout, httpcore.ConnectTimeout))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return _Stream(_spend(lambda t: self._inner.connect_unix_socket(path, t, socket_options), timeout,
                              httpcore.ConnectTimeout))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def transport(**kwargs) -> httpx.HTTPTransport:
    """httpx's own transport (`kwargs` are its own), keeping to the deadline of `with deadline(...)`.

    httpx has no option for the network backend of its connection pool; httpcore's pool takes one, and
    reads it for every new connection, so it is wrapped in place."""
    t = httpx.HTTPTransport(**kwargs)
    pool = t._pool
    pool._network_backend = _Backend(pool._network_backend)
    return t
