"""Summarise py-spy's collapsed stacks (--format raw): where the time goes, by function.

    python -m bench.topstacks FILE [--self] [--match SUBSTRING] [--top 40]
"""

import argparse
import re
from collections import Counter


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--self", action="store_true", help="self time (the innermost frame) instead of inclusive")
    p.add_argument("--match", help="only stacks containing this")
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args(argv)
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
