"""`${VAR}` and `${VAR:default}` expansion over a YAML tree, as Redpanda Connect does it."""

import collections.abc
import re
from typing import Any

from meterworker.config.errors import Path



# `${{...}}` is Redpanda Connect's escape for a literal `${...}`.
_ENV_REF = re.compile(r"\$\{\{([^{}]*)\}\}|\$\{([A-Za-z0-9_]+)(?::([^}]*))?\}")
_LEFTOVER_REF = re.compile(r"\$\{[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_HEADER_PARENTS = {
    ("input", "prometheus", "headers"),
    ("output", "http_client", "headers"),
    ("output", "output", "http_client", "headers"),
}
_CREDENTIAL_PATHS = {("input", "prometheus", "bearer_token"), ("input", "prometheus", "basic_auth", "password")}


def _text_key(key: Any) -> str:
    """YAML reads unquoted `3:` or `yes:` as a number or a boolean; field names are text."""
    if isinstance(key, str):
        return key
    return str(key).lower() if isinstance(key, bool) else str(key)


class Expansion:
    """Expands variables in every string of a YAML tree, collecting problems and warnings by path."""

    def __init__(self, environ: collections.abc.Mapping[str, str]):
        self.environ = environ
        self.problems: list[tuple[Path, str]] = []
        self.warnings: list[tuple[Path, str]] = []

    def expand(self, node: Any, path: Path) -> Any:
        if isinstance(node, dict):
            return {_text_key(key): self.expand(value, path + (_text_key(key),)) for key, value in node.items()}
        if isinstance(node, list):
            return [self.expand(value, path + (i,)) for i, value in enumerate(node)]
        if isinstance(node, str):
            if path[:-1] in _HEADER_PARENTS or path in _CREDENTIAL_PATHS:
                self._warn_leftovers(node, path)
            return _ENV_REF.sub(lambda m: self._substitute(m, path), node)
        return node

    def _substitute(self, match: re.Match, path: Path) -> str:
        escaped, name, default = match.groups()
        if escaped is not None:
            return "${" + escaped + "}"
        value = self.environ.get(name)
        if default is not None:
            return value or default  # as in Redpanda Connect: the default also replaces an empty value
        if value is None:
            self.problems.append((path, f"environment variable {name} is not set"))
            return ""
        return value

    def _warn_leftovers(self, text: str, path: Path) -> None:
        # Only text written in the file counts, not what a variable expands to.
        for m in _LEFTOVER_REF.finditer(_ENV_REF.sub("", text)):
            if m.group(1):
                hint = f"write ${{{m.group(1)}}} to take it from the environment"
            else:
                hint = "meterworker sends it as written"
            self.warnings.append((path, f"looks like an unexpanded variable {m.group(0)}; {hint}"))
