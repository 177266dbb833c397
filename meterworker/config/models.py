"""The collector config as pydantic models: the seed's YAML (Redpanda Connect `prometheus` input, the
bloblang mapping, an `http_client` output) plus meterworker's own options."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from meterworker.config.types import (
    BrokerUrl, Credential, Duration, ExistingFile, Headers, HttpStatus, HttpUrl, Name, NonEmptyStr, PositiveDuration,
    RedisUrl, TimeZone,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo must not silently change billing


class RedisSentinel(_Model):
    """For a `sentinel://` redis_url or broker_url: the Sentinels' master name and their own credentials."""

    master_name: NonEmptyStr | None = None
    username: str | None = None
    password: str | None = None
    tls: bool = False  # the Sentinels speak TLS (with redis_tls' files)


class RedisTls(_Model):
    """TLS to Redis, for `sentinel://` URLs (no TLS scheme of their own) or instead of a rediss:// URL's
    ssl_* parameters (the URL's win)."""

    ca_file: ExistingFile | None = None
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None
    cert_reqs: Literal["required", "optional", "none"] = "required"
    check_hostname: bool = True


class Settings(_Model):
    """meterworker's own options (top-level `meterworker:` section)."""

    name: Name = "meterworker"
    redis_url: RedisUrl | None = None
    broker_url: BrokerUrl | None = None
    redis_sentinel: RedisSentinel = Field(default_factory=RedisSentinel)
    redis_tls: RedisTls | None = None
    redis_min_replicas: int = Field(0, ge=0)
    redis_replica_timeout: PositiveDuration = 1.0
    data_dir: NonEmptyStr = "./meterworker-data"
    catchup_horizon: Duration = 24 * 3600.0
    dedup_horizon: Duration = 32 * 86400.0
    lock_timeout: PositiveDuration = 30.0
    query_retry_period: PositiveDuration = 5.0
    query_max_backoff: PositiveDuration = 300.0
    stall_timeout: PositiveDuration = 60.0

    @model_validator(mode="after")
    def _sentinel_master_name(self) -> "Settings":
        sentinel = [u for u in (self.redis_url, self.broker_url) if u and u.lower().startswith("sentinel://")]
        if sentinel and not self.redis_sentinel.master_name:
            raise ValueError("a sentinel:// URL needs meterworker.redis_sentinel.master_name "
                             "(the name the Sentinels monitor the primary by)")
        return self


class BasicAuth(_Model):
    username: str
    password: str


class TLS(_Model):
    root_cas_file: ExistingFile | None = None
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


_NEITHER = object()


class Query(_Model):
    """A PromQL query billed as it answers (`promql`), or a counter whose exact growth is billed (`counter`)."""

    name: Name
    promql: NonEmptyStr | None = None
    counter: NonEmptyStr | None = None
    by: list[NonEmptyStr] | None = None  # counter mode: sum the growth per these labels; None: each series alone
    max_gap: PositiveDuration = 3600.0   # counter mode: the longest gap between samples billed across
    new_series: Literal["count", "skip"] = "count"  # counter mode: a new series' first value counted from zero
    schedule: str | None = None
    mapping: MappingOverride | None = None

    @model_validator(mode="before")
    @classmethod
    def _promql_if_not_counter(cls, data):
        if isinstance(data, dict) and "promql" not in data and "counter" not in data:
            data = {**data, "promql": _NEITHER}
        return data

    @field_validator("promql", "counter", mode="before")
    @classmethod
    def _given_as_text(cls, value):
        if value is _NEITHER:
            raise ValueError("field required")  # the message of any missing field
        if value is None:  # only an explicit null gets here (an absent field is not validated)
            raise ValueError("input should be a valid string")
        return value

    @field_validator("counter")
    @classmethod
    def _series_selector(cls, counter: str | None) -> str | None:
        if counter is not None:
            from meterworker.query.counter.selector import SelectorError, parse_selector
            try:
                parse_selector(counter)
            except SelectorError as e:
                raise ValueError(f"not a series selector: {e}") from None
        return counter

    @field_validator("by")
    @classmethod
    def _distinct_labels(cls, by: list[str] | None) -> list[str] | None:
        if by is not None:
            import re
            for label in by:
                if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label) or label == "__name__":
                    raise ValueError(f"{label!r} is not a label name")
            if len(set(by)) != len(by):
                raise ValueError("a label is given twice")
        return by

    @model_validator(mode="after")
    def _promql_or_counter(self) -> "Query":
        if (self.promql is None) == (self.counter is None):
            found = "both are given" if self.promql is not None else "neither is given"
            raise ValueError(f"a query needs exactly one of promql and counter; {found}")
        if self.promql is not None:
            extra = [f for f in ("by", "max_gap", "new_series") if f in self.model_fields_set]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to a counter query (counter: instead of promql:)")
        return self

    @property
    def is_counter(self) -> bool:
        return self.counter is not None


class QueryItem(_Model):
    query: Query


class PrometheusInput(_Model):
    url: HttpUrl
    schedule: str = "0 * * * * *"
    timezone: TimeZone = "UTC"
    query_offset: Duration = 0.0
    timeout: PositiveDuration = 30.0
    headers: Headers = Field(default_factory=dict)
    basic_auth: BasicAuth | None = None
    bearer_token: Credential | None = None
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
    headers: Headers = Field(default_factory=dict)
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
