"""A fast OpenMeter-like sink for the benchmarks, run as a process of its own.

asyncio, HTTP/1.1 keep-alive, no validation beyond counting: each ``POST /api/v1/events`` body
is a JSON array of CloudEvents; the sink counts the events and their distinct ids (a regex over
the body, no JSON parsing) and answers 204 as OpenMeter does. ``GET /stats`` returns the counts
and the wall-clock times of the first and last delivery; ``POST /reset`` clears them.
tests/support's OpenMeterSink validates every event but is too slow to measure against.

    python -m bench.sink --port N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections import Counter

ID = re.compile(rb'"specversion":"1\.0","id":"([^"]+)","type":"([^"]*)"')


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.requests = 0
        self.events = 0
        self.ids: set[bytes] = set()
        self.first: float | None = None
        self.last: float | None = None
        self.last_by_type: dict[str, float] = {}
        self.sizes: Counter = Counter()

    def add(self, body: bytes) -> None:
        now = time.time()
        found = ID.findall(body)
        self.requests += 1
        self.events += len(found)
        self.sizes[len(found)] += 1
        for event_id, event_type in found:
            self.ids.add(event_id)
            self.last_by_type[event_type] = now
        if self.first is None:
            self.first = now
        self.last = now

    def as_json(self, by_type: bool) -> bytes:
        out = {"requests": self.requests, "events": self.events, "unique": len(self.ids), "first": self.first,
               "last": self.last, "sizes": {str(k): v for k, v in sorted(self.sizes.items())}}
        if by_type:
            out["last_by_type"] = {k.decode(): v for k, v in self.last_by_type.items()}
        return json.dumps(out).encode()


STATS = Stats()


class Conn(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            self.respond(head.split(" ", 2), body)

    def respond(self, request_line, body):
        method, path = request_line[0], request_line[1]
        if method == "POST" and path.startswith("/api/v1/events"):
            STATS.add(body)
            self.t.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            return
        if path.startswith("/stats"):
            payload = STATS.as_json("by_type" in path)
        elif path.startswith("/reset"):
            STATS.reset()
            payload = b"{}"
        else:
            self.t.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Conn, "127.0.0.1", port, backlog=1024)
    print(f"bench sink listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
