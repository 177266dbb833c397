"""meterworker/connect: reading the URLs, resolving the options, Celery's settings, masking
passwords. Pure logic (no server); the real connections are in test_connect.py."""

import ssl

import pytest

from meterworker.config import ConfigError, Settings, parse_config
from meterworker.connect import UrlError, celery_settings, connection_options, parse_redis_url
from meterworker.connect.urls import redis_url_without_tls
from meterworker.redact import redact_url
from meterworker.config.secrets import secret_values

SENTINELS = "sentinel://:data-pw@10.0.0.1:26379;sentinel://10.0.0.2:26380/3;sentinel://10.0.0.3"


def test_plain_and_tls_urls():
    t = parse_redis_url("redis://u:p@h:6380/2")
    assert (t.scheme, t.hosts, t.db, t.username, t.password, t.tls) == ("redis", (("h", 6380),), 2, "u", "p", {})
    t = parse_redis_url("rediss://u:p%40ss@h/1?ssl_cert_reqs=CERT_OPTIONAL&ssl_ca_certs=/ca.pem"
                        "&ssl_certfile=/c.pem&ssl_keyfile=/c.key&ssl_check_hostname=false&socket_timeout=3")
    assert t.password == "p@ss" and t.hosts == (("h", 6379),)
    assert t.tls == {"ssl_cert_reqs": "optional", "ssl_ca_certs": "/ca.pem", "ssl_certfile": "/c.pem",
                     "ssl_keyfile": "/c.key", "ssl_check_hostname": False}
    assert redis_url_without_tls(t) == "rediss://u:p%40ss@h/1?socket_timeout=3"
    assert parse_redis_url("unix:///run/redis.sock?db=4").db == 4


def test_sentinel_list():
    t = parse_redis_url(SENTINELS)
    assert t.sentinel and t.db == 3 and t.password == "data-pw" and t.username is None
    assert t.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379))
    assert redis_url_without_tls(t) == ("sentinel://:data-pw@10.0.0.1:26379/3;sentinel://:data-pw@10.0.0.2:26380/3;"
                                        "sentinel://:data-pw@10.0.0.3:26379/3")
    assert "data-pw" not in repr(t)


@pytest.mark.parametrize("url, problem", [
    ("http://h", "must be a redis://, rediss:// or unix:// URL, or sentinel:// URLs"),
    ("redis://:pw@h/0?ssl_ca_certs=/x", "need a rediss:// URL"),
    ("rediss://:pw@h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be required, optional or none"),
    ("redis://:pw@h/zero", "the database must be a number"),
    ("sentinel://:pw@a:1/0;redis://:pw@b:2/0", "every part of a Sentinel list must be a sentinel://"),
    ("sentinel://:pw@a:1/0;sentinel://b:2/1", "different database numbers"),
    ("redis://:pw@a:1/0;redis://:pw@b:2/0", "only sentinel:// URLs can be joined"),
])
def test_bad_urls_say_why_without_the_password(url, problem):
    with pytest.raises(UrlError) as e:
        parse_redis_url(url)
    assert problem in str(e.value) and "pw@" not in str(e.value)


def test_redact_lists_and_tls_users():
    assert redact_url("rediss://meterworker:s3cret@redis:6380/0?ssl_ca_certs=/ca.pem") == \
        "rediss://meterworker:****@redis:6380/0?ssl_ca_certs=/ca.pem"
    assert redact_url("sentinel://:pw1@a:26379;sentinel://u:pw2@b:26379/0") == \
        "sentinel://:****@a:26379;sentinel://u:****@b:26379/0"
    assert redact_url("redis://:pa/ss#x@h:6379/0") == "redis://:****@h:6379/0"
    assert redact_url("amqp://mw:rabbit-pw@mq:5672/prod") == "amqp://mw:****@mq:5672/prod"


def _config(meterworker: dict) -> dict:
    return {"meterworker": meterworker,
            "input": {"prometheus": {"url": "http://p:9090", "queries": [{"query": {"name": "q", "promql": "up"}}]}},
            "output": {"http_client": {"url": "http://sink/api/v1/events"}}}


def test_config_fields_and_secrets():
    cfg = parse_config(_config({
        "redis_url": "sentinel://:data-pw@a:26379;sentinel://:data-pw@b:26379/2",
        "broker_url": "amqp://mw:rabbit-pw@mq:5672/prod",
        "redis_sentinel": {"master_name": "mymaster", "password": "sentinel-pw"},
        "redis_min_replicas": 1, "redis_replica_timeout": "250ms",
    }), {}).config
    assert {"data-pw", "rabbit-pw", "sentinel-pw"} <= set(secret_values(cfg))
    opts = connection_options(cfg.meterworker, {})
    assert (opts.master_name, opts.min_replicas, opts.replica_timeout_ms) == ("mymaster", 1, 250)


@pytest.mark.parametrize("meterworker, field, problem", [
    ({"redis_url": "sentinel://:pw@a:26379"}, "meterworker", "needs meterworker.redis_sentinel.master_name"),
    ({"redis_url": "amqp://u:pw@mq//"}, "meterworker.redis_url", "must be a redis://"),
    ({"broker_url": "kafka://u:pw@k:9092"}, "meterworker.broker_url", "or an amqp:// URL"),
    ({"redis_min_replicas": -1}, "meterworker.redis_min_replicas", ""),
])
def test_config_errors_name_the_field(meterworker, field, problem):
    with pytest.raises(ConfigError) as e:
        parse_config(_config(meterworker), {})
    assert field in str(e.value) and problem in str(e.value) and ":pw@" not in str(e.value)


def test_environment_wins_and_broker_defaults_to_redis():
    settings = Settings(redis_url="redis://cfg:6379/0")
    assert connection_options(settings, {}).broker_url == "redis://cfg:6379/0"
    opts = connection_options(settings, {"METERWORKER_REDIS_URL": "redis://env:6379/1",
                                         "METERWORKER_BROKER_URL": "amqp://guest:guest@mq//"})
    assert opts.redis.hosts == (("env", 6379),) and opts.broker is None
    assert connection_options(None, {}, "redis://celeryconfig:6379/5").redis.db == 5
    with pytest.raises(UrlError, match="master_name"):
        connection_options(None, {"METERWORKER_REDIS_URL": "sentinel://a:26379"})


def test_celery_settings_redis_tls_defaults_to_verifying():
    conf = celery_settings(connection_options(Settings(redis_url="rediss://u:pw@h:6380/0"), {}),
                           {"visibility_timeout": 3600})
    assert conf["broker_url"] == conf["result_backend"] == "rediss://u:pw@h:6380/0"
    assert conf["broker_use_ssl"] == conf["redis_backend_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert conf["broker_transport_options"] == {"visibility_timeout": 3600}


def test_celery_settings_sentinel_with_tls_and_sentinel_password(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    settings = Settings(redis_url=SENTINELS, redis_tls={"ca_file": str(ca)},
                        redis_sentinel={"master_name": "mymaster", "password": "s-pw", "tls": True})
    conf = celery_settings(connection_options(settings, {}), {"visibility_timeout": 3600})
    sentinel_kwargs = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0, "password": "s-pw", "ssl": True,
                       "ssl_cert_reqs": "required", "ssl_ca_certs": str(ca), "ssl_check_hostname": True}
    assert conf["broker_transport_options"] == {"visibility_timeout": 3600, "master_name": "mymaster",
                                                "sentinel_kwargs": sentinel_kwargs}
    assert conf["result_backend_transport_options"] == {"master_name": "mymaster", "sentinel_kwargs": sentinel_kwargs}
    assert conf["broker_use_ssl"]["ssl_ca_certs"] == str(ca)
    assert conf["broker_use_ssl"]["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_celery_settings_rabbitmq_quorum_queues():
    settings = Settings(redis_url="redis://r:6379/0", broker_url="amqp://u:pw@mq:5672/prod")
    conf = celery_settings(connection_options(settings, {}), {"visibility_timeout": 3600})
    assert conf["broker_url"] == "amqp://u:pw@mq:5672/prod" and conf["result_backend"] == "redis://r:6379/0"
    assert conf["broker_transport_options"] == {}
    queues = {q.name: q for q in conf["task_queues"]}
    assert set(queues) == {"query", "send"}
    for name, q in queues.items():
        assert q.durable and q.queue_arguments == {"x-queue-type": "quorum"} and q.max_priority is None
        assert (q.exchange.name, q.exchange.type, q.routing_key) == (name, "topic", name)
