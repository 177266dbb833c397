"""The collector config: the seed's YAML (Redpanda Connect `prometheus` input, the
bloblang mapping, an `http_client` output) plus meterworker's own options.

Loading expands `${VAR}` / `${VAR:default}`, validates everything into pydantic models
and reports every problem as one line `<field path>: <message>` in a ConfigError.
"""

import collections.abc
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Iterator, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from meterworker.config.durations import parse_duration
from meterworker.redact import redact_url
from meterworker.schedule.cron import parse_schedule

__all__ = [
    "BasicAuth",
    "Batching",
    "Config",
    "ConfigError",
    "DropOn",
    "HttpClient",
    "Input",
    "LoadedConfig",
    "Mapping",
    "MappingOverride",
    "NestedOutput",
    "Output",
    "Pipeline",
    "PrometheusInput",
    "Query",
    "QueryItem",
    "Settings",
    "TLS",
    "load_config",
    "parse_config",
]

Path = tuple[str | int, ...]


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one `<field path>: <message>` line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class LoadedConfig:
    config: "Config"
    warnings: list[str] = field(default_factory=list)


# --- value types ------------------------------------------------------------------


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30s' or '1m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value)
    else:
        raise ValueError(f"expected a duration such as '30s' or '1m', got {_describe(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    return seconds


def _not_negative(seconds: float) -> float:
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def _name(text: str) -> str:
    _not_blank(text)
    if not _NAME.fullmatch(text):
        raise ValueError(f"{text!r} may only contain letters, digits, '_', '.', ':' and '-'")
    return text


def _http_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number
    except ValueError as e:
        raise ValueError(f"not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {redact_url(url)!r}")
    return url


def _redis_url(url: str) -> str:
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"must be a redis://, rediss:// or unix:// URL, got {redact_url(url)!r}")
    return url


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'") from None
    return name


def _existing_file(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"file not found: {path!r}")
    return path


def _http_status(code: int) -> int:
    if not 100 <= code <= 599:
        raise ValueError(f"{code} is not an HTTP status code (100-599)")
    return code


Duration = Annotated[float, BeforeValidator(_seconds), AfterValidator(_not_negative)]
PositiveDuration = Annotated[float, BeforeValidator(_seconds), AfterValidator(_positive)]
NonEmptyStr = Annotated[str, AfterValidator(_not_blank)]
Name = Annotated[str, AfterValidator(_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HttpStatus = Annotated[int, AfterValidator(_http_status)]


# --- models -----------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo must not silently change billing


class Settings(_Model):
    """meterworker's own options (top-level `meterworker:` section)."""

    name: Name = "meterworker"
    redis_url: Annotated[str, AfterValidator(_redis_url)] | None = None
    data_dir: NonEmptyStr = "./meterworker-data"
    catchup_horizon: Duration = 24 * 3600.0
    dedup_horizon: Duration = 32 * 86400.0
    lock_timeout: PositiveDuration = 30.0
    query_retry_period: PositiveDuration = 5.0
    query_max_backoff: PositiveDuration = 300.0
    stall_timeout: PositiveDuration = 3900.0


class BasicAuth(_Model):
    username: str
    password: str


class TLS(_Model):
    root_cas_file: Annotated[str, AfterValidator(_existing_file)] | None = None
    skip_cert_verify: bool = False


class Mapping(_Model):
    """How a result series becomes a CloudEvent; the defaults are the seed's bloblang."""

    type: str | None = None
    source: NonEmptyStr = "prometheus"
    subject_label: NonEmptyStr = "instance"
    labels: list[str] | None = None
    event_time: Literal["start", "end"] = "start"


class MappingOverride(_Model):
    """Per-query mapping options; None inherits the global value."""

    type: str | None = None
    source: NonEmptyStr | None = None
    subject_label: NonEmptyStr | None = None
    labels: list[str] | None = None
    event_time: Literal["start", "end"] | None = None


class Query(_Model):
    name: Name
    promql: NonEmptyStr
    schedule: str | None = None
    mapping: MappingOverride | None = None


class QueryItem(_Model):
    query: Query


class PrometheusInput(_Model):
    url: HttpUrl
    schedule: str = "0 * * * * *"
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    query_offset: Duration = 0.0
    timeout: PositiveDuration = 30.0
    headers: dict[str, str] = Field(default_factory=dict)
    basic_auth: BasicAuth | None = None
    bearer_token: str | None = None
    tls: TLS = Field(default_factory=TLS)
    queries: list[QueryItem]

    @field_validator("queries")
    @classmethod
    def _at_least_one(cls, queries: list[QueryItem]) -> list[QueryItem]:
        if not queries:
            raise ValueError("at least one query is required")
        return queries

    @model_validator(mode="after")
    def _one_credential(self) -> "PrometheusInput":
        if self.basic_auth is not None and self.bearer_token:
            raise ValueError("give basic_auth or bearer_token, not both")
        return self


class Input(_Model):
    prometheus: PrometheusInput


class Pipeline(_Model):
    processors: list[dict] = Field(default_factory=list)


class Batching(_Model):
    count: int = Field(100, ge=1)
    period: Duration = 1.0
    processors: list[dict] = Field(default_factory=list)


_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR")


class HttpClient(_Model):
    url: HttpUrl
    verb: str = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveDuration = 30.0
    retry_period: Duration = 15.0
    retries: int = Field(3, ge=0)
    max_retry_backoff: Duration = 60.0
    max_in_flight: int = Field(64, ge=1)
    batch_as_multipart: bool = False
    drop_on: list[HttpStatus] = Field(default_factory=lambda: [400])
    batching: Batching = Field(default_factory=Batching)
    dump_request_log_level: str | None = None

    @field_validator("verb")
    @classmethod
    def _post_or_put(cls, verb: str) -> str:
        if verb.upper() not in ("POST", "PUT"):
            raise ValueError(f"must be POST or PUT, got {verb!r}")
        return verb.upper()

    @field_validator("batch_as_multipart")
    @classmethod
    def _no_multipart(cls, multipart: bool) -> bool:
        if multipart:
            raise ValueError("true is not supported: the metering API takes a JSON array of events; leave it false")
        return multipart

    @field_validator("dump_request_log_level")
    @classmethod
    def _log_level(cls, level: str | None) -> str | None:
        if level is None or not level.strip():
            return level
        if level.strip().upper() not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)} or empty, got {level!r}")
        return level.strip().upper()


class DropOn(_Model):
    """The seed's `drop_on` output wrapper. What Redpanda Connect drops, meterworker dead-letters.

    `error`: Redpanda drops what http_client gives up on (after its retries) instead of retrying it
    forever; meterworker dead-letters it after `retries` either way, so both values are accepted.
    `back_pressure`: with `error: false` Redpanda retries what waited that long, as meterworker's batches
    keep waiting in Redis; with `error: true` it drops it, which meterworker refuses.
    """

    error: bool = False
    error_patterns: list[str] = Field(default_factory=list)
    back_pressure: PositiveDuration | None = None

    @field_validator("back_pressure")
    @classmethod
    def _no_drop_for_back_pressure(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("error"):
            raise ValueError(
                "not supported with drop_on.error: true: it would drop events that wait longer than this for "
                "the sink; meterworker does not give up on events because the sink is slow (batches wait in "
                "Redis for a free max_in_flight slot, then retry and dead-letter as usual): remove back_pressure")
        return value


class NestedOutput(_Model):
    http_client: HttpClient | None = None


class Output(_Model):
    label: str | None = None
    drop_on: DropOn | None = None
    output: NestedOutput | None = None
    http_client: HttpClient | None = None

    @model_validator(mode="after")
    def _exactly_one_http_client(self) -> "Output":
        nested = self.output.http_client if self.output else None
        if (nested is None) == (self.http_client is None):
            found = "both are given" if nested else "neither is given"
            raise ValueError(f"exactly one of output.http_client and output.output.http_client is required; {found}")
        return self


class Config(_Model):
    meterworker: Settings = Field(default_factory=Settings)
    input: Input
    mapping: Mapping = Field(default_factory=Mapping)
    pipeline: Pipeline | None = None
    output: Output

    @property
    def http(self) -> HttpClient:
        nested = self.output.output.http_client if self.output.output else None
        return self.output.http_client or nested

    @property
    def error_patterns(self) -> list[str]:
        return list(self.output.drop_on.error_patterns) if self.output.drop_on else []

    @property
    def queries(self) -> list[Query]:
        return [item.query for item in self.input.prometheus.queries]

    def query(self, name: str) -> Query:
        for q in self.queries:
            if q.name == name:
                return q
        raise KeyError(name)

    def mapping_for(self, query: Query) -> Mapping:
        overrides = query.mapping.model_dump(exclude_none=True) if query.mapping else {}
        merged = self.mapping.model_copy(update=overrides)
        if merged.type is None:
            merged = merged.model_copy(update={"type": query.name})
        return merged

    def schedule_for(self, query: Query) -> str:
        return query.schedule or self.input.prometheus.schedule


# --- loading ----------------------------------------------------------------------


def load_config(path: str | os.PathLike, environ: collections.abc.Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, expand and validate a config file; raises ConfigError listing every problem."""
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError([f"{name}: file not found"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: not a UTF-8 text file"]) from None
    except OSError as e:
        raise ConfigError([f"{name}: cannot read the file: {e.strerror or e}"]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError([_yaml_problem(name, e)]) from None
    return _parse(data, environ, origin=name)


def parse_config(data: dict, environ: collections.abc.Mapping[str, str] | None = None) -> LoadedConfig:
    """Expand and validate an already-parsed YAML tree; raises ConfigError listing every problem."""
    return _parse(data, environ, origin="config")


def _parse(data: Any, environ: collections.abc.Mapping[str, str] | None, origin: str) -> LoadedConfig:
    if data is None:
        raise ConfigError([f"{origin}: the config is empty; expected a mapping with input and output sections"])
    if not isinstance(data, dict):
        raise ConfigError([f"{origin}: expected a mapping with input and output sections at the top level, "
                           f"got {_describe(data)}"])
    expansion = _Expansion(os.environ if environ is None else environ)
    data = expansion.expand(data, ())
    found = _compatibility_problems(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        found = [_problem_from_pydantic(err) for err in e.errors()] + found
    # A field whose variable is unset reports only that, not how its empty value then fails.
    unset = {path for path, _ in expansion.problems}
    problems = expansion.problems + [(path, message) for path, message in found if path not in unset]
    if problems:
        raise ConfigError(list(dict.fromkeys(f"{format_path(path)}: {message}" for path, message in problems)))
    return LoadedConfig(config, [f"{format_path(path)}: {message}" for path, message in expansion.warnings])


def format_path(path: Path) -> str:
    """('input', 'prometheus', 'queries', 1, 'query') -> 'input.prometheus.queries[1].query'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    return kinds.get(type(value), type(value).__name__)


# --- YAML -------------------------------------------------------------------------


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one); libyaml's parser
    when PyYAML has it (ten times faster: a config of 1,000 queries loads in 50 ms, not 500)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, collections.abc.Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(name: str, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if mark is None or not problem:
        return f"{name}: invalid YAML: {' '.join(str(err).split())}"
    context = getattr(err, "context", None)
    where = f"column {mark.column + 1}" + (f", {context}" if context else "")
    return f"{name}:{mark.line + 1}: {problem} ({where})"


# --- ${VAR} expansion -------------------------------------------------------------

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


class _Expansion:
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


# --- pydantic errors --------------------------------------------------------------


def _problem_from_pydantic(err: dict) -> tuple[Path, str]:
    path = tuple(err["loc"])
    kind = err["type"]
    if kind == "missing":
        return path, "field required"
    if kind == "extra_forbidden":
        return path, _unknown_field_message(path)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return path, f"expected a mapping, got {_describe(err['input'])}"
    if kind == "list_type":
        return path, f"expected a list, got {_describe(err['input'])}"
    if kind == "value_error":
        return path, str(err["ctx"]["error"])
    message = err["msg"]
    return path, message[:1].lower() + message[1:]


def _unknown_field_message(path: Path) -> str:
    known = _field_names_at(path[:-1])
    close = difflib.get_close_matches(str(path[-1]), known, n=1)
    if close:
        return f"unknown field (did you mean '{close[0]}'?)"
    if known:
        return f"unknown field (expected one of: {', '.join(known)})"
    return "unknown field"


def _field_names_at(path: Path) -> list[str]:
    """The field names of the model that sits at `path` in a Config, or [] if none does."""
    node: Any = Config
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


# --- checks that pydantic cannot place on a field ---------------------------------

_MAPPING_HINT = (
    "use meterworker's mapping options instead: mapping.type, mapping.source, mapping.subject_label, "
    "mapping.labels, mapping.event_time (globally, or per query under queries[].query.mapping)"
)
SEED_BLOBLANG = """
root = this.values.map_each(value -> {
  "id": uuid_v4(),
  "specversion": "1.0",
  "type": this.name,
  "source": "prometheus",
  "time": this.timestamp,
  "subject": value.metric.instance,
  "data": {
    "value": value.value,
    "metric": value.metric
  }
})
"""
_JSON_ARRAY = {"format": "json_array"}
_SEED_COUNTER = {"type": "counter", "name": "openmeter_events_sent", "value": 1}
_HTTP_CLIENT_PATHS: list[Path] = [("output", "http_client"), ("output", "output", "http_client")]


def _compatibility_problems(data: dict) -> list[tuple[Path, str]]:
    """Checks on the raw tree, so that they run even when pydantic found other problems."""
    return (
        _duplicate_query_names(data)
        + _schedule_problems(data)
        + _pipeline_problems(data)
        + [p for path in _HTTP_CLIENT_PATHS for p in _batching_problems(data, path)]
    )


def _get(node: Any, *keys: str) -> Any:
    """node[k1][k2]..., or None where a level is missing or not a mapping."""
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


_QUERIES: Path = ("input", "prometheus", "queries")


def _queries(data: dict) -> list[tuple[int, Any]]:
    queries = _get(data, *_QUERIES)
    return list(enumerate(queries)) if isinstance(queries, list) else []


def _duplicate_query_names(data: dict) -> list[tuple[Path, str]]:
    first_index: dict[str, int] = {}
    problems = []
    for i, item in _queries(data):
        name = _get(item, "query", "name")
        if not isinstance(name, str):
            continue
        if name in first_index:
            problems.append((_QUERIES + (i, "query", "name"),
                             f"duplicate query name {name!r} (also used by queries[{first_index[name]}])"))
        else:
            first_index[name] = i
    return problems


def _schedule_problems(data: dict) -> list[tuple[Path, str]]:
    prometheus = _get(data, "input", "prometheus")
    tz = _get(prometheus, "timezone")
    try:
        tz = _timezone(tz) if isinstance(tz, str) else "UTC"
    except ValueError:
        tz = "UTC"  # the bad zone is reported on its own field
    schedules = [(("input", "prometheus", "schedule"), _get(prometheus, "schedule"))]
    schedules += [(_QUERIES + (i, "query", "schedule"), _get(item, "query", "schedule")) for i, item in _queries(data)]
    problems = []
    for path, expr in schedules:
        if isinstance(expr, str):
            try:
                parse_schedule(expr, tz)
            except ValueError as e:
                problems.append((path, str(e)))
    return problems


def _squash(text: str) -> str:
    return "".join(text.split())


def _processors(data: dict, path: Path) -> Iterator[tuple[Path, str, dict]]:
    """(path, kind, processor) of each processor in the list at `path`; anything else is pydantic's to report."""
    processors = _get(data, *path)
    if not isinstance(processors, list):
        return
    for i, processor in enumerate(processors):
        if isinstance(processor, dict):
            yield path + (i,), _processor_kind(processor), processor


def _pipeline_problems(data: dict) -> list[tuple[Path, str]]:
    problems = []
    for path, kind, processor in _processors(data, ("pipeline", "processors")):
        if kind in ("mapping", "bloblang"):
            code = processor[kind]
            if not isinstance(code, str) or _squash(code) != _squash(SEED_BLOBLANG):
                problems.append((path + (kind,), f"custom bloblang is not supported; {_MAPPING_HINT}"))
        elif kind == "unarchive":
            if processor[kind] != _JSON_ARRAY:
                problems.append((path + (kind,), "only 'format: json_array' is supported (as in the seed config)"))
        else:
            problems.append((path, f"unsupported processor {kind!r}; {_MAPPING_HINT}"))
    return problems


def _batching_problems(data: dict, http_client: Path) -> list[tuple[Path, str]]:
    problems = []
    for path, kind, processor in _processors(data, http_client + ("batching", "processors")):
        if kind == "metric":
            if not _is_seed_counter(processor[kind]):
                problems.append((path + (kind,), "only the seed's counter is supported "
                                 "(type: counter, name: openmeter_events_sent, value: 1)"))
        elif kind == "archive":
            if processor[kind] != _JSON_ARRAY:
                problems.append((path + (kind,), "only 'format: json_array' is supported (as in the seed config)"))
        else:
            problems.append((path, f"unsupported batching processor {kind!r}; meterworker sends each batch as a "
                                   "JSON array (set its size with batching.count and batching.period)"))
    return problems


def _processor_kind(processor: dict) -> str:
    kinds = [key for key in processor if key != "label"]
    return str(kinds[0]) if len(kinds) == 1 else " + ".join(map(str, kinds)) or "(empty)"


def _is_seed_counter(metric: Any) -> bool:
    if not isinstance(metric, dict):
        return False
    value = metric.get("value")
    return {**metric, "value": 1} == _SEED_COUNTER and str(value) == "1"
