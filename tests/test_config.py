from pathlib import Path

import pytest
import yaml

from meterworker.config import Config, ConfigError, LoadedConfig, load_config, parse_config
from meterworker.config.secrets import secret_values
from meterworker.redact import redact_headers, redact_url

SEED = Path(__file__).resolve().parent.parent / "examples" / "collector.yaml"
ENV = {"PROMETHEUS_URL": "http://prometheus:9090"}
TOKEN_WARNING = (
    "output.output.http_client.headers.Authorization: looks like an unexpanded variable "
    "$KONNECT_SYSTEM_ACCESS_TOKEN; write ${KONNECT_SYSTEM_ACCESS_TOKEN} to take it from the environment"
)
BLOBLANG_PROBLEM = (
    "pipeline.processors[0].mapping: custom bloblang is not supported; use meterworker's mapping options "
    "instead: mapping.type, mapping.source, mapping.subject_label, mapping.labels, mapping.event_time "
    "(globally, or per query under queries[].query.mapping)"
)


def seed() -> dict:
    return yaml.safe_load(SEED.read_text())


def minimal() -> dict:
    return {
        "input": {"prometheus": {"url": "http://prometheus:9090", "queries": [{"query": {"name": "q", "promql": "up"}}]}},
        "output": {"http_client": {"url": "http://openmeter:8888/api/v1/events"}},
    }


def problems(data, environ=ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def the_problem(data, environ=ENV) -> str:
    found = problems(data, environ)
    assert len(found) == 1, found
    return found[0]


# --- the seed -------------------------------------------------------------------------


def test_seed_example_loads_with_the_seed_values():
    loaded = load_config(SEED, ENV)

    assert isinstance(loaded, LoadedConfig)
    assert loaded.warnings == [TOKEN_WARNING]
    c = loaded.config
    prom = c.input.prometheus
    assert prom.url == "http://prometheus:9090"
    assert prom.schedule == "0 * * * * *"
    assert prom.query_offset == 60.0
    assert [(q.name, q.promql) for q in c.queries] == [
        ("node_cpu_usage", "sum(increase(node_cpu_seconds_total{mode!='idle'}[1m])) by(instance)")
    ]
    http = c.http
    assert http is c.output.output.http_client
    assert http.url == "https://us.api.konghq.com/v3/openmeter/events"
    assert http.verb == "POST"
    assert http.headers["Content-Type"] == "application/json"
    assert (http.retries, http.retry_period, http.max_retry_backoff, http.timeout) == (3, 15.0, 60.0, 30.0)
    assert http.max_in_flight == 64
    assert http.drop_on == [400]
    assert (http.batching.count, http.batching.period) == (100, 1.0)
    assert http.dump_request_log_level == "DEBUG"
    assert c.error_patterns == ["Bad Request"]
    assert c.output.label == "openmeter"


def test_seed_mapping_is_the_default_mapping():
    c = load_config(SEED, ENV).config
    mapping = c.mapping_for(c.query("node_cpu_usage"))
    assert (mapping.type, mapping.source, mapping.subject_label, mapping.labels, mapping.event_time) == (
        "node_cpu_usage", "prometheus", "instance", None, "start")
    assert c.schedule_for(c.query("node_cpu_usage")) == "0 * * * * *"


def test_openmeter_url_from_the_environment():
    c = load_config(SEED, {**ENV, "OPENMETER_URL": "http://localhost:8888"}).config
    assert c.http.url == "http://localhost:8888/v3/openmeter/events"


def test_seed_without_prometheus_url_names_the_variable():
    assert problems(seed(), environ={}) == ["input.prometheus.url: environment variable PROMETHEUS_URL is not set"]


def test_direct_http_client_and_defaults():
    loaded = parse_config(minimal(), {})
    c = loaded.config
    assert loaded.warnings == []
    assert c.http is c.output.http_client
    assert c.error_patterns == []
    prom = c.input.prometheus
    assert (prom.schedule, prom.timezone, prom.query_offset, prom.timeout) == ("0 * * * * *", "UTC", 0.0, 30.0)
    assert (prom.headers, prom.basic_auth, prom.bearer_token) == ({}, None, None)
    assert (prom.tls.root_cas_file, prom.tls.skip_cert_verify) == (None, False)
    http = c.http
    assert (http.verb, http.headers, http.timeout, http.retry_period) == ("POST", {}, 30.0, 15.0)
    assert (http.retries, http.max_retry_backoff, http.max_in_flight) == (3, 60.0, 64)
    assert (http.batch_as_multipart, http.drop_on, http.dump_request_log_level) == (False, [400], None)
    assert (http.batching.count, http.batching.period, http.batching.processors) == (100, 1.0, [])
    s = c.meterworker
    assert (s.name, s.redis_url, s.data_dir) == ("meterworker", None, "./meterworker-data")
    assert (s.catchup_horizon, s.dedup_horizon, s.lock_timeout) == (86400.0, 32 * 86400.0, 30.0)
    assert c.pipeline is None


def test_meterworker_section_and_durations():
    data = minimal()
    data["meterworker"] = {"name": "eu-1", "redis_url": "redis://redis:6379/1", "catchup_horizon": "6h",
                           "dedup_horizon": "768h", "lock_timeout": 10}
    data["input"]["prometheus"]["query_offset"] = "1m30s"
    s = parse_config(data, {}).config.meterworker
    assert (s.name, s.redis_url, s.catchup_horizon, s.dedup_horizon, s.lock_timeout) == (
        "eu-1", "redis://redis:6379/1", 6 * 3600.0, 32 * 86400.0, 10.0)
    data["meterworker"]["dedup_horizon"] = "32d"
    assert parse_config(data, {}).config.meterworker.dedup_horizon == 32 * 86400.0
    assert parse_config(data, {}).config.input.prometheus.query_offset == 90.0


def test_environment_expansion():
    data = minimal()
    prom = data["input"]["prometheus"]
    prom["url"] = "http://${PROM_HOST:localhost}:${PROM_PORT}"
    prom["headers"] = {"X-Scope-OrgID": "${TENANT:}", "X-Literal": "${{NOT_A_VAR}}"}
    data["output"]["http_client"]["retries"] = "${RETRIES:5}"
    c = parse_config(data, {"PROM_PORT": "9091", "RETRIES": ""}).config
    assert c.input.prometheus.url == "http://localhost:9091"
    assert c.input.prometheus.headers == {"X-Scope-OrgID": "", "X-Literal": "${NOT_A_VAR}"}
    assert c.http.retries == 5  # as in Redpanda Connect, an empty variable takes the default


def test_environ_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_URL", "https://prom.example.com")
    assert load_config(SEED).config.input.prometheus.url == "https://prom.example.com"


def test_expanded_token_gives_no_warning():
    data = seed()
    data["output"]["output"]["http_client"]["headers"]["Authorization"] = "Bearer ${TOKEN}"
    loaded = parse_config(data, {**ENV, "TOKEN": "abc$DEF"})
    assert loaded.warnings == []
    assert loaded.config.http.headers["Authorization"] == "Bearer abc$DEF"


def test_unexpanded_variable_in_prometheus_headers_warns():
    data = minimal()
    data["input"]["prometheus"]["headers"] = {"X-Api-Key": "$PROM_KEY"}
    assert parse_config(data, {}).warnings == [
        "input.prometheus.headers.X-Api-Key: looks like an unexpanded variable $PROM_KEY; "
        "write ${PROM_KEY} to take it from the environment"
    ]


# --- broken configs -------------------------------------------------------------------


def _set(path: str, value):
    """A mutation of the seed: set the value at a dotted path (ints index lists)."""

    def mutate(data):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = data
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def _delete(path: str):
    def mutate(data):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = data
        for p in parents:
            node = node[p]
        del node[last]

    return mutate


def _add_query(name="q2", promql="up", **more):
    def mutate(data):
        data["input"]["prometheus"]["queries"].append({"query": {"name": name, "promql": promql, **more}})

    return mutate


HC = "output.output.http_client"

BROKEN = {
    "unknown key with suggestion": (
        _set(f"{HC}.retry_perod", "5s"),
        f"{HC}.retry_perod: unknown field (did you mean 'retry_period'?)"),
    "unknown top-level key": (
        _set("inputs", {}),
        "inputs: unknown field (did you mean 'input'?)"),
    "unknown key without a close match": (
        _set("input.prometheus.queries.0.query.frobnicate", 1),
        "input.prometheus.queries[0].query.frobnicate: unknown field (expected one of: name, promql, counter, by, "
        "max_gap, new_series, schedule, mapping)"),
    "missing url": (
        _delete("input.prometheus.url"),
        "input.prometheus.url: field required"),
    "missing queries": (
        _delete("input.prometheus.queries"),
        "input.prometheus.queries: field required"),
    "empty queries": (
        _set("input.prometheus.queries", []),
        "input.prometheus.queries: at least one query is required"),
    "queries not a list": (
        _set("input.prometheus.queries", "up"),
        "input.prometheus.queries: expected a list, got a string"),
    "null promql": (
        _add_query(promql=None),
        "input.prometheus.queries[1].query.promql: input should be a valid string"),
    "empty promql": (
        _set("input.prometheus.queries.0.query.promql", "  \n"),
        "input.prometheus.queries[0].query.promql: must not be empty"),
    "duplicate query name": (
        _add_query(name="node_cpu_usage"),
        "input.prometheus.queries[1].query.name: duplicate query name 'node_cpu_usage' (also used by queries[0])"),
    "bad query name": (
        _set("input.prometheus.queries.0.query.name", "cpu usage"),
        "input.prometheus.queries[0].query.name: 'cpu usage' may only contain letters, digits, '_', '.', ':' and '-'"),
    "bad duration": (
        _set("input.prometheus.query_offset", "1 minute"),
        "input.prometheus.query_offset: invalid duration '1 minute'"),
    "negative offset": (
        _set("input.prometheus.query_offset", "-1m"),
        "input.prometheus.query_offset: must not be negative"),
    "zero timeout": (
        _set(f"{HC}.timeout", "0s"),
        f"{HC}.timeout: must be greater than zero"),
    "bad schedule": (
        _set("input.prometheus.schedule", "every minute"),
        "input.prometheus.schedule: "),
    "bad query schedule": (
        _add_query(schedule="@every banana"),
        "input.prometheus.queries[1].query.schedule: "),
    "bad timezone": (
        _set("input.prometheus.timezone", "Mars/Olympus_Mons"),
        "input.prometheus.timezone: unknown time zone 'Mars/Olympus_Mons'"),
    "unset env var": (
        _set(f"{HC}.headers.Authorization", "Bearer ${KONNECT_TOKEN}"),
        f"{HC}.headers.Authorization: environment variable KONNECT_TOKEN is not set"),
    "bad drop_on status": (
        _set(f"{HC}.drop_on", [400, 99]),
        f"{HC}.drop_on[1]: 99 is not an HTTP status code (100-599)"),
    "both http clients": (
        _set("output.http_client", {"url": "http://openmeter:8888/api/v1/events"}),
        "output: exactly one of output.http_client and output.output.http_client is required; both are given"),
    "no http client": (
        _delete("output.output"),
        "output: exactly one of output.http_client and output.output.http_client is required; neither is given"),
    "missing output": (
        _delete("output"),
        "output: field required"),
    "custom bloblang": (
        _set("pipeline.processors.0.mapping", 'root = this.values.map_each(v -> {"type": "cpu"})'),
        BLOBLANG_PROBLEM),
    "other pipeline processor": (
        _set("pipeline.processors.1", {"log": {"message": "hi"}}),
        "pipeline.processors[1]: unsupported processor 'log'"),
    "other unarchive format": (
        _set("pipeline.processors.1.unarchive.format", "lines"),
        "pipeline.processors[1].unarchive: only 'format: json_array' is supported"),
    "other batching processor": (
        _set(f"{HC}.batching.processors.1", {"compress": {"algorithm": "gzip"}}),
        f"{HC}.batching.processors[1]: unsupported batching processor 'compress'"),
    "other batching metric": (
        _set(f"{HC}.batching.processors.0.metric.name", "sent"),
        f"{HC}.batching.processors[0].metric: only the seed's counter is supported"),
    "batch_as_multipart": (
        _set(f"{HC}.batch_as_multipart", True),
        f"{HC}.batch_as_multipart: true is not supported"),
    "bad URL scheme": (
        _set(f"{HC}.url", "ftp://openmeter/events"),
        f"{HC}.url: must be an http:// or https:// URL with a host, got 'ftp://openmeter/events'"),
    "URL without host": (
        _set("input.prometheus.url", "http://"),
        "input.prometheus.url: must be an http:// or https:// URL with a host"),
    "negative retries": (
        _set(f"{HC}.retries", -1),
        f"{HC}.retries: input should be greater than or equal to 0"),
    "zero max_in_flight": (
        _set(f"{HC}.max_in_flight", 0),
        f"{HC}.max_in_flight: input should be greater than or equal to 1"),
    "verb GET": (
        _set(f"{HC}.verb", "GET"),
        f"{HC}.verb: must be POST or PUT, got 'GET'"),
    "bad log level": (
        _set(f"{HC}.dump_request_log_level", "LOUD"),
        f"{HC}.dump_request_log_level: must be one of TRACE, DEBUG, INFO, WARN, WARNING, ERROR or empty"),
    "retries not a number": (
        _set(f"{HC}.retries", "three"),
        f"{HC}.retries: input should be a valid integer"),
    "section not a mapping": (
        _set("input.prometheus", "http://prometheus:9090"),
        "input.prometheus: expected a mapping, got a string"),
    "bad event_time": (
        _set("mapping", {"event_time": "middle"}),
        "mapping.event_time: input should be 'start' or 'end'"),
    "bad redis url": (
        _set("meterworker", {"redis_url": "localhost:6379"}),
        "meterworker.redis_url: must be a redis://, rediss:// or unix:// URL"),
    "missing root CA file": (
        _set("input.prometheus.tls", {"root_cas_file": "/nonexistent/ca.pem"}),
        "input.prometheus.tls.root_cas_file: file not found: '/nonexistent/ca.pem'"),
    "two prometheus credentials": (
        _set("input.prometheus.basic_auth", {"username": "u", "password": "p"}),
        "input.prometheus: give basic_auth or bearer_token, not both"),
}


@pytest.mark.parametrize("mutate, expected", list(BROKEN.values()), ids=list(BROKEN))
def test_broken_config_names_the_field(mutate, expected):
    data = seed()
    if expected.startswith("input.prometheus: give basic_auth"):
        data["input"]["prometheus"]["bearer_token"] = "t"
    mutate(data)
    assert the_problem(data).startswith(expected)


def test_schedule_problem_carries_parse_schedule_message():
    from meterworker.schedule.cron import parse_schedule

    with pytest.raises(ValueError) as info:
        parse_schedule("every minute", "UTC")
    data = seed()
    data["input"]["prometheus"]["schedule"] = "every minute"
    assert the_problem(data) == f"input.prometheus.schedule: {info.value}"


def test_schedule_is_read_in_the_configured_zone():
    data = minimal()
    data["input"]["prometheus"].update(schedule="0 0 * * *", timezone="Europe/Berlin")
    data["input"]["prometheus"]["queries"][0]["query"]["schedule"] = "@every 5m"
    c = parse_config(data, {}).config
    assert c.schedule_for(c.query("q")) == "@every 5m"


def test_all_problems_are_reported_together():
    data = seed()
    prom = data["input"]["prometheus"]
    prom["query_offset"] = "soon"
    prom["queries"].append({"query": {"name": "node_cpu_usage"}})
    data["pipeline"]["processors"][0]["mapping"] = "root = this"
    data["output"]["output"]["http_client"]["drop_on"] = [700]
    found = problems(data, environ={})
    assert [p.split(":")[0] for p in found] == [
        "input.prometheus.url",
        "input.prometheus.query_offset",
        "input.prometheus.queries[1].query.promql",
        f"{HC}.drop_on[0]",
        "input.prometheus.queries[1].query.name",
        "pipeline.processors[0].mapping",
    ]
    assert "input.prometheus.queries[1].query.promql: field required" in found


def test_unset_variable_is_the_only_problem_for_its_field():
    data = minimal()
    data["input"]["prometheus"]["url"] = "${PROMETHEUS_URL}"
    assert problems(data, {}) == ["input.prometheus.url: environment variable PROMETHEUS_URL is not set"]


def test_problems_are_single_lines():
    data = seed()
    data["pipeline"]["processors"][0]["mapping"] = "root = this\nroot.x = 1"
    data["input"]["prometheus"]["schedule"] = "* * *"
    assert all("\n" not in p and "Traceback" not in p for p in problems(data))


# --- files ----------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("input:\n  prometheus:\n    url: [unclosed\n    schedule: x\noutput: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:")
    line = int(problem[len(str(path)) + 1:].split(":")[0])
    assert 3 <= line <= 5


def test_duplicate_yaml_key_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("input:\n  prometheus:\n    url: http://a\n    url: http://b\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems == [f"{path}:4: duplicate key 'url' (column 5)"]


def test_top_level_list_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("- input: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems == [
        f"{path}: expected a mapping with input and output sections at the top level, got a list"]


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems[0].startswith(f"{path}: the config is empty")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: file not found"]


def test_parse_config_refuses_a_non_mapping():
    with pytest.raises(ConfigError) as info:
        parse_config(["input"])  # type: ignore[arg-type]
    assert info.value.problems[0].startswith("config: expected a mapping")


# --- mapping and lookups --------------------------------------------------------------


def test_mapping_for_merges_query_overrides_over_the_global_mapping():
    data = minimal()
    data["mapping"] = {"source": "prom-eu", "subject_label": "customer", "labels": ["customer", "region"]}
    data["input"]["prometheus"]["queries"] = [
        {"query": {"name": "plain", "promql": "up"}},
        {"query": {"name": "custom", "promql": "up", "schedule": "@hourly",
                   "mapping": {"type": "api_calls", "labels": ["region"], "event_time": "end"}}},
    ]
    c = parse_config(data, {}).config

    plain = c.mapping_for(c.query("plain"))
    assert (plain.type, plain.source, plain.subject_label, plain.labels, plain.event_time) == (
        "plain", "prom-eu", "customer", ["customer", "region"], "start")
    custom = c.mapping_for(c.query("custom"))
    assert (custom.type, custom.source, custom.subject_label, custom.labels, custom.event_time) == (
        "api_calls", "prom-eu", "customer", ["region"], "end")
    assert c.mapping.type is None  # the global mapping is left alone
    assert c.schedule_for(c.query("custom")) == "@hourly"
    assert c.schedule_for(c.query("plain")) == "0 * * * * *"


def test_global_mapping_type_applies_to_every_query():
    data = minimal()
    data["mapping"] = {"type": "usage"}
    c = parse_config(data, {}).config
    assert c.mapping_for(c.query("q")).type == "usage"


def test_unknown_query_name_is_a_key_error():
    c = parse_config(minimal(), {}).config
    with pytest.raises(KeyError):
        c.query("nope")


def test_config_model_is_usable_directly():
    c = Config.model_validate(minimal())
    assert c.http.url == "http://openmeter:8888/api/v1/events"


# --- redaction ------------------------------------------------------------------------


def test_redact_headers():
    headers = {
        "Authorization": "Bearer abc.def",
        "Proxy-Authorization": "Basic dXNlcjpwYXNz",
        "X-Api-Key": "k123",
        "X-Auth-Token": "t456",
        "Cookie": "session=1",
        "Content-Type": "application/json",
        "X-Scope-OrgID": "tenant-1",
    }
    assert redact_headers(headers) == {
        "Authorization": "Bearer ****",
        "Proxy-Authorization": "Basic ****",
        "X-Api-Key": "****",
        "X-Auth-Token": "****",
        "Cookie": "****",
        "Content-Type": "application/json",
        "X-Scope-OrgID": "tenant-1",
    }
    assert headers["Authorization"] == "Bearer abc.def"  # a copy, not in place


def test_redact_url():
    assert redact_url("https://user:s3cret@prom.example.com:9090/api?x=1") == "https://user:****@prom.example.com:9090/api?x=1"
    assert redact_url("https://h/p?api_key=abc&query=up&access_token=t") == "https://h/p?api_key=****&query=up&access_token=****"
    assert redact_url("redis://:pw@redis:6379/0") == "redis://:****@redis:6379/0"
    assert redact_url("http://prometheus:9090") == "http://prometheus:9090"


def test_secret_values():
    data = minimal()
    prom = data["input"]["prometheus"]
    prom["url"] = "https://reader:promPass@prom.example.com"
    prom["basic_auth"] = {"username": "reader", "password": "basicPass"}
    prom["headers"] = {"X-Scope-OrgID": "tenant", "X-Api-Key": "promKey"}
    data["output"]["http_client"]["headers"] = {"Authorization": "Bearer omToken", "Content-Type": "application/json"}
    data["output"]["http_client"]["url"] = "https://openmeter.example.com/api/v1/events?token=urlToken"
    data["meterworker"] = {"redis_url": "redis://:redisPass@redis:6379/0"}
    secrets = secret_values(parse_config(data, {}).config)
    assert set(secrets) == {"promKey", "Bearer omToken", "omToken", "basicPass", "promPass", "urlToken", "redisPass"}
    assert len(secrets) == len(set(secrets))


def test_secret_values_include_bearer_token_and_skip_empty():
    data = minimal()
    data["input"]["prometheus"]["bearer_token"] = "promBearer"
    data["output"]["http_client"]["headers"] = {"Authorization": ""}
    assert secret_values(parse_config(data, {}).config) == ["promBearer"]


def test_error_messages_do_not_echo_url_passwords():
    data = minimal()
    data["output"]["http_client"]["url"] = "ftp://user:hunter2@host/x"
    assert "hunter2" not in the_problem(data)


def test_drop_on_error_and_back_pressure():
    data = minimal()
    data["output"] = {"label": "openmeter", "drop_on": {"error": True},
                      "output": {"http_client": data["output"]["http_client"]}}
    c = parse_config(data, {}).config
    assert (c.output.label, c.output.drop_on.error, c.output.drop_on.back_pressure) == ("openmeter", True, None)

    data["output"]["drop_on"] = {"error": False, "back_pressure": "30s"}
    assert parse_config(data, {}).config.output.drop_on.back_pressure == 30.0

    data["output"]["drop_on"] = {"error": True, "back_pressure": "30s"}
    [problem] = problems(data, {})
    assert problem.startswith("output.drop_on.back_pressure: not supported with drop_on.error: true")
    assert "remove back_pressure" in problem

    data["output"]["drop_on"] = {"back_pressure": "soon"}
    assert the_problem(data, {}).startswith("output.drop_on.back_pressure: invalid duration 'soon'")
