"""Go-style durations ("90s", "1m", "1h30m", "500ms") to seconds and back."""

import math
import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; raises ValueError naming what is wrong."""
    s = str(text).strip()
    if s in ("0", ""):
        if s == "":
            raise ValueError("empty duration; expected e.g. '30s', '1m', '1h30m'")
        return 0.0
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r}; expected e.g. '30s', '1m', '1h30m'")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_prom_duration(seconds: float) -> str:
    """A Prometheus range duration for a positive number of seconds: '60s', or '1500ms'."""
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"a range duration must be positive, got {seconds}")
    ms = round(seconds * 1000)
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def format_go_duration(seconds: float) -> str:
    """Human form, e.g. 5400 -> '1h30m', 0.5 -> '500ms'."""
    if seconds == 0:
        return "0s"
    ms = round(abs(seconds) * 1000)
    sign = "-" if seconds < 0 else ""
    if ms == 0:  # below a millisecond, as Go prints it
        micros = abs(seconds) * 1e6
        return sign + (f"{micros:.3g}µs" if micros >= 1 else f"{micros * 1000:.3g}ns")
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms_left = divmod(rest, 1000)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "")
    if s or ms_left:
        out += f"{s}.{ms_left:03d}".rstrip("0").rstrip(".") + "s" if ms_left else f"{s}s"
    return sign + out
