"""Summarise py-spy's collapsed stacks (--format raw): where the time goes, by function or by stage.

    python -m bench.topstacks FILE [--self] [--match SUBSTRING] [--top 40]
    python -m bench.topstacks FILE --stages      # meterworker's stages, seconds of samples each

py-spy counts a thread waiting on a lock or a poll as busy; --stages puts those under "waiting".
"""

import argparse
import re
from collections import Counter


STAGES = [
    ("waiting (idle threads, the pool waiting for work)",
     lambda s, last: last.startswith(("Condition.wait", "_epoll.poll", "select (", "poll ("))
     or ("recv_bytes" in s and "workloop" in s and "fast_trace_task" not in s)),
    ("query: waiting for Prometheus' answer", lambda s, last: "run_query" in s and "PrometheusClient.stream" in s
     and "parse_stream" not in s and "_fast_series" not in s and "map_series" not in s),
    ("query: reading and parsing the response", lambda s, last: "run_query" in s and (
        "parse_stream" in s or "_fast_series" in s or "ijson" in s or "iter_bytes" in s)),
    ("query: mapping to CloudEvents, ids", lambda s, last: "run_query" in s and "map_series" in s),
    ("query: handing over to the outbox", lambda s, last: "enqueue_events" in s),
    ("query: other (task, state)", lambda s, last: "run_query" in s),
    ("send: taking a batch", lambda s, last: "Outbox.take" in s or "Outbox._batch" in s),
    ("send: checking delivered ids", lambda s, last: "undelivered" in s),
    ("send: posting (encode, HTTP)", lambda s, last: "Sender.post" in s),
    ("send: recording delivered", lambda s, last: "delivered_now" in s or "Outbox.finish" in s),
    ("send: other (slots, task)", lambda s, last: "send (send_task" in s or "Driver.deliver" in s),
    ("celery: task overhead in the process running it", lambda s, last: "fast_trace_task" in s or "workloop" in s),
    ("celery: task events", lambda s, last: "EventDispatcher" in s),
    ("celery: consumer (messages, acks)", lambda s, last: "Consumer" in s or "asynloop" in s),
    ("sweeper", lambda s, last: "Sweeper" in s),
]


def stages(path: str, rate: int) -> None:
    counts = Counter()
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        last = stack.split(";")[-1]
        name = next((name for name, match in STAGES if match(stack, last)), "other")
        counts[name] += int(n)
    busy = sum(n for k, n in counts.items() if not k.startswith("waiting"))
    print(f"| stage | seconds of samples | share of busy samples |\n|---|---|---|")
    for name, n in counts.most_common():
        share = "" if name.startswith("waiting") else f"{100 * n / busy:.0f}%"
        print(f"| {name} | {n / rate:.2f} | {share} |")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--self", action="store_true", help="self time (the innermost frame) instead of inclusive")
    p.add_argument("--match", help="only stacks containing this")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--stages", action="store_true", help="seconds per meterworker stage")
    p.add_argument("--rate", type=int, default=200, help="py-spy's sampling rate (bench uses 200)")
    args = p.parse_args(argv)
    if args.stages:
        stages(args.file, args.rate)
        return
    total, counts = 0, Counter()
    for line in open(args.file):
        stack, _, n = line.rstrip().rpartition(" ")
        if args.match and args.match not in stack:
            continue
        n = int(n)
        frames = [re.sub(r" \((.*/)?([^/]*)\)", r" (\2)", f) for f in stack.split(";")[1:]]
        total += n
        if args.self:
            counts[frames[-1] if frames else "?"] += n
        else:
            for f in set(frames):
                counts[f] += n
    print(f"{total} samples")
    for f, n in counts.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
