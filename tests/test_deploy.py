"""deploy/: no container engine runs here, so the files are checked as a cluster would read them.

They parse; every command names a real meterworker or celery command with options that exist;
images, ports, names and environment variables agree across the Dockerfile, Compose, Kubernetes
and Prometheus files; Prometheus' own promtool accepts the scrape configs and proves the alerts;
the seed's query bills a real node-exporter through a real Prometheus.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

from tests.support import PrometheusServer, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"meterworker:{VERSION}"
METRICS_PORT = 9808
FLOWER_PORT = 5555
MW_SERVICES = ("beat", "query-worker", "send-worker", "flower")
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}")


# --- reading the files -------------------------------------------------------------------


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s_objects() -> list[dict]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    return [d for res in kustomization["resources"] for d in load_docs(DEPLOY / res)]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """[(INSTRUCTION, arguments), …] per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        if instr.upper() == "FROM":
            stages.append([])
        stages[-1].append((instr.upper(), args.strip()))
    return stages


def compose_default(value: str) -> str:
    """`${X:-default}` as Compose resolves it with X unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", value)


def collector_vars() -> tuple[set[str], set[str]]:
    """(variables collector.yaml requires, variables with a default there)."""
    found = VAR.findall((DEPLOY / "collector.yaml").read_text())
    return {n for n, d in found if not d}, {n for n, d in found if d}


def meterworker_env_names() -> set[str]:
    from meterworker.ops import process_env
    from meterworker import runtime

    return {runtime.CONFIG_ENV, runtime.REDIS_ENV, process_env.LOG_FORMAT_ENV, process_env.METRICS_PORT_ENV,
            process_env.METRICS_ADDR_ENV}


def option_value(argv: list[str], *names: str) -> str | None:
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


# --- commands ------------------------------------------------------------------------------


def _celery_command(args: list[str]):
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery as celery_cli

    from meterworker.app import app

    obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    ctx = celery_cli.make_context("celery", list(args), obj=obj)
    assert ctx.params["app"] == "meterworker", f"celery {args}: -A meterworker is needed to load meterworker's app"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rest = [*ctx.protected_args, *ctx.args]
    name, cmd, rest = celery_cli.resolve_command(ctx, rest)
    sub = cmd.make_context(name, rest, parent=ctx, obj=obj)
    if name == "flower":
        check_flower_options(sub.params["tornado_argv"])
    return name, sub


def check_flower_options(argv) -> None:
    import flower.options  # noqa: F401  (defines Flower's options)
    from tornado.options import options

    for arg in argv:
        if not (arg.startswith("--") and "=" in arg):
            pytest.fail(f"flower option {arg!r}: write --name=value")
        name = arg[2:].split("=", 1)[0].replace("_", "-")
        if name not in options._options:
            pytest.fail(f"flower has no option --{name}")


def check_command(argv: list[str], env: dict[str, str]):
    """Parse argv the way its program would in a container with `env`; fail on an unknown command or option.
    Returns (command, params)."""
    import meterworker.app  # noqa: F401  (imported before the variables below could change how)

    saved = dict(os.environ)  # the per-process options set variables as they parse
    os.environ.update(env)
    try:
        if argv[:2] == ["sh", "-c"]:
            return check_command(shlex.split(argv[2].removeprefix("exec ")), env)
        if argv[0] == "celery":
            name, sub = _celery_command(argv[1:])
            return name, sub.params
        assert argv[0] == "meterworker", f"{argv}: not a meterworker or celery command"
        from meterworker.cli import main

        ctx = main.make_context("meterworker", argv[1:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*ctx.protected_args, *ctx.args]
        name, cmd, rest = main.resolve_command(ctx, rest)
        sub = cmd.make_context(name, rest, parent=ctx)
        if name in ("worker", "beat", "flower"):
            # what `meterworker worker|beat|flower` hands to celery (meterworker.cli.processes._exec_celery)
            celery_args = list(sub.params["celery_args"])
            if name == "worker":
                celery_args = ["-Q", sub.params["queues"], *celery_args]
            _celery_command(["-A", "meterworker", name, *celery_args])
        return name, sub.params
    except click.ClickException as e:
        pytest.fail(f"{argv}: {e.format_message()}")
    finally:
        os.environ.clear()
        os.environ.update(saved)


ENV = {"METERWORKER_CONFIG": "/etc/meterworker/collector.yaml"}


def k8s_env() -> dict[str, str]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]}
    return dict(lit.split("=", 1) for lit in generated["meterworker-env"]["literals"])


def test_check_command_refuses_what_does_not_exist():
    """The checker itself: a misspelt command or option fails."""
    for bad in (["meterworker", "wroker"], ["meterworker", "worker", "--metrics-prt", "1"],
                ["meterworker", "worker", "--max-tasks-per-chil", "3"], ["celery", "-A", "meterworker", "bet"],
                ["celery", "-A", "meterworker", "flower", "--prot=5555"], ["meterworker", "health", "--check", "lock"]):
        with pytest.raises(pytest.fail.Exception):
            check_command(bad, ENV)
    assert check_command(["meterworker", "worker", "-Q", "send", "--concurrency", "4"], ENV)[0] == "worker"
    with pytest.raises(pytest.fail.Exception, match="Missing option '-c'"):
        check_command(["meterworker", "beat"], {})


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_is_slim_runs_as_non_root_and_starts_meterworker():
    stages = dockerfile_stages()
    final = dict(stages[-1])
    base = final["FROM"].split()[0]
    assert base.endswith("-slim"), base
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert base.split(":")[1].startswith(requires.removeprefix(">=")), (base, requires)
    user = final["USER"].split(":")[0]
    assert user not in ("root", "0") and user.isdigit(), "a numeric non-root user lets Kubernetes check runAsNonRoot"
    instrs = [i for i, _ in stages[-1]]
    assert instrs.index("USER") < instrs.index("ENTRYPOINT")
    assert yaml.safe_load(final["ENTRYPOINT"]) == ["meterworker"]
    assert {int(p) for p in final["EXPOSE"].split()} == {METRICS_PORT, FLOWER_PORT}
    assert final["ENV"].split("METERWORKER_CONFIG=")[1].split()[0] == "/etc/meterworker/collector.yaml"
    # the build tools stay in the build stage
    assert not any("build-essential" in args for i, args in stages[-1] if i == "RUN")


def test_dockerfile_copies_files_that_exist_and_the_ignore_file_lets_in():
    allowed = [line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")]
    copies = [args.split() for stage in dockerfile_stages() for i, args in stage
              if i == "COPY" and not args.startswith("--from")]
    assert copies
    for parts in copies:
        for src in parts[:-1]:
            assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
            assert any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed), \
                f"COPY {src}: excluded by deploy/Dockerfile.dockerignore"


# --- Compose ---------------------------------------------------------------------------------


def test_compose_has_every_role_and_a_redis_that_keeps_everything():
    services = compose()["services"]
    assert set(services) == {"redis", *MW_SERVICES, "prometheus", "node-exporter"}
    redis_cmd = services["redis"]["command"]
    assert option_value(redis_cmd, "--appendonly") == "yes"
    assert option_value(redis_cmd, "--maxmemory-policy") == "noeviction"
    assert any(v["target"] == "/data" if isinstance(v, dict) else v.endswith(":/data")
               for v in services["redis"]["volumes"])
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_compose_commands_are_real_meterworker_commands():
    services = compose()["services"]
    roles = {}
    for name in MW_SERVICES:
        svc = services[name]
        env = {k: compose_default(str(v)) for k, v in svc["environment"].items()}
        command, params = check_command(svc["command"], env)
        roles[name] = (command, params)
        if "healthcheck" in svc:
            test = svc["healthcheck"]["test"]
            assert test[0] == "CMD"
            check_command(test[1:], env)
    assert roles["beat"][0] == "beat"
    assert roles["query-worker"][0] == "worker" and roles["query-worker"][1]["queues"] == "query"
    assert roles["send-worker"][0] == "worker" and roles["send-worker"][1]["queues"] == "send"
    assert roles["flower"][0] == "flower"


def test_compose_images_ports_and_environment_agree():
    services = compose()["services"]
    required, _ = collector_vars()
    known = meterworker_env_names() | required | {n for n, _ in VAR.findall((DEPLOY / "collector.yaml").read_text())}
    for name in MW_SERVICES:
        svc = services[name]
        assert compose_default(svc["image"]) == IMAGE
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        env = svc["environment"]
        assert set(env) <= known, f"{name}: variables meterworker does not read: {set(env) - known}"
        assert required <= set(env), f"{name}: collector.yaml needs {required - set(env)}"
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert (DEPLOY / mounts[env["METERWORKER_CONFIG"]]).resolve() == DEPLOY / "collector.yaml"
        redis = urlsplit(env["METERWORKER_REDIS_URL"])
        assert redis.hostname in services and (redis.port or 6379) == 6379
        prom = urlsplit(env["PROMETHEUS_URL"])
        assert prom.hostname == "prometheus" and prom.port == 9090
        if name != "flower":
            assert int(option_value(svc["command"], "--metrics-port")) == METRICS_PORT
    flower_port = option_value(services["flower"]["command"], "--port")
    assert services["flower"]["ports"] == [f"{flower_port}:{flower_port}"] and int(flower_port) == FLOWER_PORT
    assert "9090:9090" in services["prometheus"]["ports"]


def test_compose_prometheus_scrapes_node_exporter_and_every_meterworker_process():
    services = compose()["services"]
    mounts = dict(reversed(v.split(":")[:2]) for v in services["prometheus"]["volumes"] if v.startswith("./"))
    config_path = option_value(services["prometheus"]["command"], "--config.file")
    config = yaml.safe_load((DEPLOY / mounts[config_path]).read_text())
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_path).parent / rule_file)
        assert in_container in mounts, f"{rule_file} is not mounted next to the Prometheus config"
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["node"]["static_configs"][0]["targets"] == ["node-exporter:9100"]
    sd = jobs["meterworker"]["dns_sd_configs"][0]
    assert set(sd["names"]) == {"beat", "query-worker", "send-worker"}
    assert sd["port"] == METRICS_PORT


# --- Kubernetes ------------------------------------------------------------------------------


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def workloads() -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] in ("Deployment", "StatefulSet")}


def test_kubernetes_files_parse_and_every_object_is_complete():
    objs = k8s_objects()
    assert {o["kind"] for o in objs} == {"Deployment", "StatefulSet", "Service"}
    for o in objs:
        assert o["apiVersion"] and o["metadata"]["name"]
        if o["kind"] in ("Deployment", "StatefulSet"):
            selector = o["spec"]["selector"]["matchLabels"]
            labels = o["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), o["metadata"]["name"]
    services = [o for o in objs if o["kind"] == "Service"]
    pods = [o["spec"]["template"] for o in objs if o["kind"] in ("Deployment", "StatefulSet")]
    for svc in services:
        targets = [p for p in pods if svc["spec"]["selector"].items() <= p["metadata"]["labels"].items()]
        assert len(targets) == 1, svc["metadata"]["name"]
        ports = {p["name"] for c in targets[0]["spec"]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports
    for extra in ("secret.example.yaml", "keda-scaledobjects.yaml"):
        assert load_docs(K8S / extra)


def test_kubernetes_beat_is_one_replica_recreated_and_workers_scale():
    w = workloads()
    beat = w["meterworker-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert check_command(containers(beat)[0]["command"], k8s_env())[0] == "beat"
    for role in ("query", "send"):
        dep = w[f"meterworker-{role}-worker"]
        assert dep["kind"] == "Deployment" and dep["spec"]["strategy"]["type"] == "RollingUpdate"
        command, params = check_command(containers(dep)[0]["command"], k8s_env())
        assert command == "worker" and params["queues"] == role


def test_kubernetes_probes_run_real_commands():
    for name, obj in workloads().items():
        for c in containers(obj):
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in c, f"{name}/{c['name']} has no {probe}"
                if "exec" in c[probe] and c["image"] == IMAGE:
                    check_command(c[probe]["exec"]["command"], k8s_env())
    beat = containers(workloads()["meterworker-beat"])[0]
    _, params = check_command(beat["livenessProbe"]["exec"]["command"], k8s_env())
    assert params["checks"] == ("beat",)
    for role in ("query", "send"):
        worker = containers(workloads()[f"meterworker-{role}-worker"])[0]
        command, params = check_command(worker["livenessProbe"]["exec"]["command"], k8s_env())
        node = option_value(worker["command"], "-n").replace("%h", "$HOSTNAME")
        assert command == "inspect" and params["destination"] == [node], "the probe pings this pod's own worker"


def test_kubernetes_config_secret_images_and_ports_agree():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]}
    env = k8s_env()
    secret = load_docs(K8S / "secret.example.yaml")[0]
    assert [f for f in generated["meterworker-config"]["files"]] == ["collector.yaml"]
    required, _ = collector_vars()
    assert required <= set(env) | set(secret["stringData"]), "collector.yaml's variables come from the ConfigMap or Secret"
    assert "KONNECT_SYSTEM_ACCESS_TOKEN" in secret["stringData"] and "KONNECT_SYSTEM_ACCESS_TOKEN" not in env
    assert set(env) <= meterworker_env_names() | {n for n, _ in VAR.findall((DEPLOY / "collector.yaml").read_text())}
    services = {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == "Service"}
    redis = urlsplit(env["METERWORKER_REDIS_URL"])
    assert redis.port in [p["port"] for p in services[redis.hostname]["spec"]["ports"]]
    for name, obj in workloads().items():
        if name == "meterworker-redis":
            continue
        pod = obj["spec"]["template"]
        c = containers(obj)[0]
        assert c["image"] == IMAGE
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert str(pod["spec"]["securityContext"]["runAsUser"]) == dict(dockerfile_stages()[-1])["USER"].split(":")[0]
        refs = {next(iter(ref.values()))["name"] for ref in c["envFrom"]}
        assert refs == {"meterworker-env", secret["metadata"]["name"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(Path(env["METERWORKER_CONFIG"]).parent))
        assert volumes[mount["name"]]["configMap"]["name"] == "meterworker-config"
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        if name == "meterworker-flower":
            assert ports["http"] == int(option_value(c["command"], "--port")) == FLOWER_PORT
        else:
            assert ports["metrics"] == int(option_value(c["command"], "--metrics-port")) == METRICS_PORT
            assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(METRICS_PORT)
            assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
            if c["securityContext"].get("readOnlyRootFilesystem"):
                # prometheus_client's per-process files go to a temporary directory
                assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}


def test_keda_scales_each_worker_deployment_on_its_own_queue():
    import celeryconfig

    routes = {r["queue"] for r in celeryconfig.task_routes.values()}
    w = workloads()
    services = {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == "Service"}
    scaled = load_docs(K8S / "keda-scaledobjects.yaml")
    assert len(scaled) == 2
    for so in scaled:
        target = w[so["spec"]["scaleTargetRef"]["name"]]
        trigger = so["spec"]["triggers"][0]
        assert trigger["type"] == "redis"
        queue = trigger["metadata"]["listName"]
        assert queue in routes
        assert check_command(containers(target)[0]["command"], k8s_env())[1]["queues"] == queue
        host, port = trigger["metadata"]["address"].rsplit(":", 1)
        svc = services[host.split(".")[0]]
        assert host == f"{svc['metadata']['name']}.{so['metadata']['namespace']}.svc"
        assert int(port) in [p["port"] for p in svc["spec"]["ports"]]


def test_kubernetes_scrape_example_keeps_annotated_pods_on_their_port():
    config = yaml.safe_load((DEPLOY / "prometheus" / "kubernetes-scrape.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == [
        yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["namespace"]]
    relabel = job["relabel_configs"]
    keep = next(r for r in relabel if r.get("action") == "keep")
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    address = next(r for r in relabel if r.get("target_label") == "__address__")
    joined = f"10.1.2.3:8080;{METRICS_PORT}"
    assert re.sub(address["regex"], address["replacement"].replace("$", "\\"), joined) == f"10.1.2.3:{METRICS_PORT}"
    assert config["rule_files"] == ["alerts.yml"]


# --- the collector config and Prometheus files --------------------------------------------


def test_deploy_collector_config_is_the_seed_query_and_loads_cleanly():
    from meterworker.config import load_config

    required, _ = collector_vars()
    loaded = load_config(DEPLOY / "collector.yaml", {v: "x-" + v.lower() if v != "PROMETHEUS_URL"
                                                    else "http://prometheus:9090" for v in required})
    assert loaded.warnings == []
    seed = load_config(ROOT / "examples" / "collector.yaml", {"PROMETHEUS_URL": "http://prometheus:9090"}).config
    assert [(q.name, q.promql) for q in loaded.config.queries] == [(q.name, q.promql) for q in seed.queries]
    assert loaded.config.http.url == seed.http.url
    assert loaded.config.http.headers["Authorization"] == "Bearer x-konnect_system_access_token"


def promtool() -> str:
    found = shutil.which("promtool") or (os.access("/usr/bin/promtool", os.X_OK) and "/usr/bin/promtool")
    if not found:
        pytest.fail("promtool (it comes with Prometheus: apt-get install prometheus, as bin/test does) is not "
                    "installed", pytrace=False)
    return found


def test_prometheus_accepts_the_config_and_the_alerts_fire_when_they_should():
    prom_dir = DEPLOY / "prometheus"
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                 ["test", "rules", "alerts.test.yml"]):
        res = subprocess.run([promtool(), *args], cwd=prom_dir, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"promtool {' '.join(args)}:\n{res.stdout}{res.stderr}"
    rules = yaml.safe_load((prom_dir / "alerts.yml").read_text())["groups"][0]["rules"]
    tested = yaml.safe_load((prom_dir / "alerts.test.yml").read_text())["tests"]
    fired = {a["alertname"] for t in tested for a in t["alert_rule_test"] if a["exp_alerts"]}
    asked = {"MeterworkerQueryFailing", "MeterworkerDeadLettersGrowing", "MeterworkerNoBeatLockHolder",
             "MeterworkerTickLagHigh"}
    assert asked <= {r["alert"] for r in rules}
    assert asked <= fired, "every alert the issue asks for has a promtool test that makes it fire"


def node_exporter() -> str:
    for candidate in (os.environ.get("NODE_EXPORTER_BIN"), shutil.which("prometheus-node-exporter"),
                      shutil.which("node_exporter")):
        if candidate:
            return candidate
    pytest.fail("prometheus-node-exporter is not installed (Debian's prometheus package recommends it: "
                "apt-get install prometheus-node-exporter), or set NODE_EXPORTER_BIN", pytrace=False)


def test_the_seed_query_bills_a_real_node_exporter(tmp_path):
    """The demo's pair, Prometheus scraping node-exporter, answers the seed's query with one event per node."""
    port = free_port()
    log = open(tmp_path / "node-exporter.log", "wb")
    exporter = subprocess.Popen([node_exporter(), f"--web.listen-address=127.0.0.1:{port}",
                                 "--collector.disable-defaults", "--collector.cpu"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        with PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="1s") as prom:
            prom.wait_for("count_over_time(node_cpu_seconds_total[1m]) > 2", timeout=30)
            # The deploy config as it is, but without its 1m offset and at the coming minute's tick, whose
            # window holds the few seconds of data this Prometheus has (a past tick would need minutes).
            text = (DEPLOY / "collector.yaml").read_text().replace("query_offset: '1m'", "query_offset: '0s'")
            cfg = tmp_path / "collector.yaml"
            cfg.write_text(text)
            env = {**os.environ, "PROMETHEUS_URL": prom.url, "KONNECT_SYSTEM_ACCESS_TOKEN": "t0ken-not-logged"}
            deadline = time.monotonic() + 30
            while True:
                tick = str((int(time.time()) // 60 + 1) * 60)
                res = subprocess.run([sys.executable, "-m", "meterworker.cli", "once", "-c", str(cfg), "--at", tick],
                                     env=env, capture_output=True, text=True, timeout=60)
                if res.stdout or time.monotonic() > deadline:
                    break
                time.sleep(1)
    finally:
        exporter.terminate()
        exporter.wait(10)
        log.close()
    assert res.returncode == 0 and res.stdout, res.stderr
    events = [yaml.safe_load(line) for line in res.stdout.splitlines()]
    assert len(events) == 1
    (event,) = events
    assert event["type"] == "node_cpu_usage" and event["subject"] == f"127.0.0.1:{port}"
    assert event["data"]["value"] > 0
    assert "t0ken-not-logged" not in res.stdout + res.stderr


# --- the production layout: Redis replicated with Sentinel -------------------------------------


def sentinel_url_hosts(url: str) -> list[tuple[str, int]]:
    from meterworker.connect import parse_redis_url

    target = parse_redis_url(url)
    assert target.sentinel, url
    return [(h, int(p)) for h, p in target.hosts]


def test_compose_sentinel_layout_replicates_redis_and_points_every_process_at_the_sentinels():
    override = yaml.safe_load((DEPLOY / "docker-compose.sentinel.yml").read_text())["services"]
    base = compose()["services"]
    sentinels = sorted(n for n in override if n.startswith("sentinel-"))
    replicas = sorted(n for n in override if n.startswith("redis-replica-"))
    assert len(sentinels) == 3 and len(replicas) == 2
    for name in replicas:
        cmd = override[name]["command"]
        assert cmd[cmd.index("--replicaof") + 1] == "redis"
        assert option_value(cmd, "--appendonly") == "yes" and option_value(cmd, "--maxmemory-policy") == "noeviction"
    script = override[sentinels[0]]["command"][0]
    monitor = re.search(r"sentinel monitor (\S+) (\S+) (\d+) (\d+)", script)
    master, host, port, quorum = monitor.groups()
    assert (host, int(port), int(quorum)) == ("redis", 6379, 2) and "redis" in base
    for name in MW_SERVICES:
        env = override[name]["environment"]
        assert sorted(sentinel_url_hosts(env["METERWORKER_REDIS_URL"])) == [(s, 26379) for s in sentinels]
        assert env["REDIS_SENTINEL_MASTER"] == master
        assert 1 <= int(env["REDIS_MIN_REPLICAS"]) < len(replicas), "a fail-over leaves enough replicas to confirm"
        assert set(override[name]["depends_on"]) == set(sentinels)
    from meterworker.config import load_config

    required, _ = collector_vars()
    loaded = load_config(DEPLOY / "collector.yaml", {**{v: "x" for v in required}, "PROMETHEUS_URL": "http://p:9090",
                                                     **{k: v for k, v in override["beat"]["environment"].items()
                                                        if k.startswith("REDIS_")}})
    assert loaded.config.meterworker.redis_sentinel.master_name == master
    assert loaded.config.meterworker.redis_min_replicas == int(override["beat"]["environment"]["REDIS_MIN_REPLICAS"])


def test_kubernetes_sentinel_layout_is_complete_and_the_commented_url_names_its_sentinels():
    objs = load_docs(K8S / "redis-sentinel.yaml")
    assert {o["kind"] for o in objs} == {"Service", "ConfigMap", "StatefulSet"}
    (sts,) = [o for o in objs if o["kind"] == "StatefulSet"]
    (svc,) = [o for o in objs if o["kind"] == "Service"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items() and svc["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    ports = {p["name"] for c in containers(sts) for p in c.get("ports", [])}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == ports == {"redis", "sentinel"}
    for c in containers(sts):
        assert "readinessProbe" in c and "livenessProbe" in c
    script = next(o for o in objs if o["kind"] == "ConfigMap")["data"]["configure.sh"]
    assert "appendonly yes" in script and "maxmemory-policy noeviction" in script
    master = re.search(r"sentinel monitor (\S+) ", script).group(1)
    pods = sts["spec"]["replicas"]
    # The kustomization's commented-out lines for this layout.
    text = (DEPLOY / "kustomization.yaml").read_text()
    url = re.search(r"#\s*- METERWORKER_REDIS_URL=(sentinel://\S+)", text).group(1)
    name, domain = sts["metadata"]["name"], svc["metadata"]["name"]
    assert sentinel_url_hosts(url) == [(f"{name}-{i}.{domain}", 26379) for i in range(pods)]
    min_replicas = int(re.search(r"#\s*- REDIS_MIN_REPLICAS=(\d+)", text).group(1))
    assert 1 <= min_replicas < pods - 1, "a fail-over leaves enough replicas to confirm"
    assert master == yaml.safe_load((DEPLOY / "collector.yaml").read_text())["meterworker"]["redis_sentinel"][
        "master_name"].split(":")[1].rstrip("}")
