"""The Lua scripts: read once from a package's `lua/` directory, registered with a redis-py client.

A line `-- include NAME.lua` in a script stands for the text of NAME.lua from the same directory
(`now.lua`: Redis' clock as `now`; `payloads.lua`: `payloads_of(pending, keys)`; `marks.lua`: reading
and writing delivered marks). Keys reach a
script only as KEYS, never pasted into its text.
"""

import re
from functools import cache
from importlib import resources

_INCLUDE = re.compile(r"^-- include (\S+\.lua)$", re.MULTILINE)


@cache
def source(package: str, name: str) -> str:
    """The text of `package`'s lua/NAME, its includes expanded."""
    text = resources.files(package).joinpath("lua", name).read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda m: source(package, m.group(1)), text)


def register(r, package: str, name: str):
    """`package`'s lua/NAME as a redis-py Script of client `r` (EVALSHA, loaded on first use)."""
    return r.register_script(source(package, name))
