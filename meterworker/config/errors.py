"""How config problems are reported: one `<field path>: <message>` line each, pydantic's errors translated."""

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel

Path = tuple[str | int, ...]


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one `<field path>: <message>` line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))




def format_path(path: Path) -> str:
    """('input', 'prometheus', 'queries', 1, 'query') -> 'input.prometheus.queries[1].query'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe(value: Any) -> str:
    if value is None:
        return "null"
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    return kinds.get(type(value), type(value).__name__)




def problem_from_pydantic(root: type[BaseModel], err: dict) -> tuple[Path, str]:
    path = tuple(err["loc"])
    kind = err["type"]
    if kind == "missing":
        return path, "field required"
    if kind == "extra_forbidden":
        return path, _unknown_field_message(root, path)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return path, f"expected a mapping, got {describe(err['input'])}"
    if kind == "list_type":
        return path, f"expected a list, got {describe(err['input'])}"
    if kind == "value_error":
        return path, str(err["ctx"]["error"])
    message = err["msg"]
    return path, message[:1].lower() + message[1:]


def _unknown_field_message(root: type[BaseModel], path: Path) -> str:
    known = _field_names_at(root, path[:-1])
    close = difflib.get_close_matches(str(path[-1]), known, n=1)
    if close:
        return f"unknown field (did you mean '{close[0]}'?)"
    if known:
        return f"unknown field (expected one of: {', '.join(known)})"
    return "unknown field"


def _field_names_at(root: type[BaseModel], path: Path) -> list[str]:
    """The field names of the model that sits at `path` under `root` (a Config), or [] if none does."""
    node: Any = root
    for part in path:
        node = _without_none(node)
        if isinstance(part, int) and typing.get_origin(node) is list:
            node = typing.get_args(node)[0]
        elif isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            node = node.model_fields[part].annotation
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        else:
            return []
    node = _without_none(node)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _without_none(tp: Any) -> Any:
    """X | None -> X."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp
