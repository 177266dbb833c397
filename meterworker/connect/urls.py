"""Reading the Redis and broker URLs users know from Celery and kombu, as plain data.

Accepted forms:

- ``redis://[user:password@]host[:port][/db]``, ``unix:///path/to/socket?db=N``
- ``rediss://[user:password@]host[:port][/db]?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem
  &ssl_certfile=/client.pem&ssl_keyfile=/client.key``: these query parameter names are the ones
  redis-py's ``from_url``, kombu's Redis transport and Celery's Redis result backend all read
  (kombu also ``ssl_check_hostname``); ``ssl_cert_reqs`` is ``required``, ``optional`` or ``none``
  (or ``CERT_REQUIRED`` etc.).
- ``sentinel://[user:password@]host1:26379[/db];sentinel://host2:26379[/db]``: kombu's form, one
  ``sentinel://`` per Sentinel joined with ``;``; user and password are those of the Redis data
  nodes (as in kombu), the master name and the Sentinels' own credentials are options.
- as broker only: ``amqp://``, ``amqps://`` and ``pyamqp://`` (RabbitMQ).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from meterworker.redact import redact_url

__all__ = [
    "AMQP_SCHEMES", "REDIS_SCHEMES", "TLS_PARAMS", "RedisTarget", "UrlError", "is_amqp_url", "parse_redis_url",
    "redis_url_without_tls",
]

REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
TLS_PARAMS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
CERT_REQS = {"required": "required", "cert_required": "required", "optional": "optional",
             "cert_optional": "optional", "none": "none", "cert_none": "none"}
DEFAULT_SENTINEL_PORT = 26379


class UrlError(ValueError):
    """A Redis or broker URL that cannot be used; the message never contains its password."""


@dataclass(frozen=True)
class RedisTarget:
    """Where meterworker's Redis is: one server (``redis``/``rediss``/``unix``) or a Sentinel group."""

    scheme: str
    hosts: tuple[tuple[str, int], ...] = ()
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: dict[str, str | bool] = field(default_factory=dict)  # ssl_* query parameters, normalised
    url: str = field(default="", repr=False)  # as given, password and all

    @property
    def sentinel(self) -> bool:
        return self.scheme == "sentinel"

    @property
    def uses_tls(self) -> bool:
        return self.scheme == "rediss" or bool(self.tls)


def is_amqp_url(url: str) -> bool:
    return _scheme(url) in AMQP_SCHEMES


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def _tls_params(query: str, where: str) -> tuple[dict[str, str | bool], list[tuple[str, str]]]:
    tls: dict[str, str | bool] = {}
    rest = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in TLS_PARAMS:
            rest.append((name, value))
        elif name == "ssl_cert_reqs":
            reqs = CERT_REQS.get(value.lower())
            if reqs is None:
                raise UrlError(f"{where}: ssl_cert_reqs must be required, optional or none, got {value!r}")
            tls[name] = reqs
        elif name == "ssl_check_hostname":
            tls[name] = value.lower() not in ("false", "0", "no", "off")
        else:
            tls[name] = value
    return tls, rest


def _split(url: str, where: str):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UrlError(f"{where}: not a valid URL ({e})") from None
    return parts, port


def _db(path: str, where: str) -> int:
    text = path.strip("/")
    if not text:
        return 0
    if not text.isdigit():
        raise UrlError(f"{where}: the database must be a number, got {text!r}")
    return int(text)


def parse_redis_url(url: str) -> RedisTarget:
    """A ``redis://``, ``rediss://``, ``unix://`` URL or a ``sentinel://…;sentinel://…`` list, read.

    Raises UrlError naming the problem (never the password)."""
    where = repr(redact_url(url))
    scheme = _scheme(url)
    if scheme not in REDIS_SCHEMES:
        raise UrlError("must be a redis://, rediss:// or unix:// URL, or sentinel:// URLs joined with ';', "
                       f"got {where}")
    if scheme != "sentinel":
        if ";" in url and any(_scheme(p) for p in url.split(";")[1:]):
            raise UrlError(f"only sentinel:// URLs can be joined with ';', got {where}")
        parts, port = _split(url, where)
        tls, rest = _tls_params(parts.query, where)
        if tls and scheme == "redis":
            raise UrlError(f"ssl_* parameters need a rediss:// URL (TLS), got {where}")
        if scheme == "unix":
            db = _db(dict(rest).get("db", ""), where)
            hosts: tuple = ()
        else:
            if not parts.hostname:
                raise UrlError(f"the URL has no host: {where}")
            db = _db(parts.path, where)
            hosts = ((unquote(parts.hostname), port or 6379),)
        return RedisTarget(scheme, hosts, db, _unq(parts.username), _unq(parts.password), tls, url)

    hosts_list: list[tuple[str, int]] = []
    dbs, users, passwords = set(), set(), set()
    tls: dict[str, str | bool] = {}
    for chunk in url.split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        if _scheme(chunk) != "sentinel":
            raise UrlError(f"every part of a Sentinel list must be a sentinel:// URL, got {where}")
        parts, port = _split(chunk, where)
        if not parts.hostname:
            raise UrlError(f"a sentinel:// URL has no host: {where}")
        hosts_list.append((unquote(parts.hostname), port or DEFAULT_SENTINEL_PORT))
        if parts.path.strip("/"):
            dbs.add(_db(parts.path, where))
        if parts.username:
            users.add(unquote(parts.username))
        if parts.password:
            passwords.add(unquote(parts.password))
        chunk_tls, _ = _tls_params(parts.query, where)
        tls.update(chunk_tls)
    for what, values in (("database numbers", dbs), ("user names", users), ("passwords", passwords)):
        if len(values) > 1:
            raise UrlError(f"the sentinel:// URLs give different {what}: {where}")
    return RedisTarget("sentinel", tuple(hosts_list), dbs.pop() if dbs else 0, users.pop() if users else None,
                       passwords.pop() if passwords else None, tls, url)


def _unq(value: str | None) -> str | None:
    return unquote(value) if value else None


def redis_url_without_tls(target: RedisTarget) -> str:
    """The URL of `target` without its ssl_* parameters (they go to Celery as ``*_use_ssl`` settings,
    which kombu would otherwise let the URL's override), user, password and database on every
    ``sentinel://`` part."""
    if not target.sentinel:
        parts = urlsplit(target.url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in TLS_PARAMS])
        return parts._replace(query=query).geturl()
    userinfo = ""
    if target.username or target.password:
        userinfo = quote(target.username or "", safe="")
        if target.password:
            userinfo += ":" + quote(target.password, safe="")
        userinfo += "@"
    return ";".join(f"sentinel://{userinfo}{host}:{port}/{target.db}" for host, port in target.hosts)
