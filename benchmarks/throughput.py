# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flow-run throughput of process workers (a benchmark, not a test).

From the collection root:

    .venv/bin/python benchmarks/throughput.py [--runs 100] [--configs stock-1,defaults-1,defaults-3]
        [--stack own|quickstart] [--keep]

`--stack own` (the default) deploys a stack of the benchmark's own with the server role
(throughput/inventory.yml, throughput/stack.yml: PostgreSQL and one server named
bench-tp-*, API on 127.0.0.1:4290, networks on their own subnets) and removes it at the
end; `--stack quickstart` measures the stack `scripts/quickstart` deployed.

For each worker configuration it (re)deploys the benchmark's own pool `bench-pool` with
the worker role (benchmarks/throughput/workers.yml; other pools are not touched),
creates N flow runs of a trivial flow (code in the shared flows directory) at once
through the REST API, waits until every run is final, and prints: completed runs per
minute (first run created -> last run ended), failures, p50/p95 of scheduled -> ended
per run, and CPU-seconds per run of the server, PostgreSQL and the bench workers (their
flow runs included), read from their cgroups (other work on the machine is not
counted). Configurations are measured in one invocation so their ratios compare like
with like. Results are appended to benchmarks/results/throughput-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time

import httpx

from cgroup import container_cpu_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS_DIR = "/srv/prefect/flows/bench"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

# Settings under test; a key left out takes the role's shipped default
# (roles/worker/defaults/main.yml, roles/server/defaults/main.yml). "limit": 0 is no
# --limit (the role's argument spec refuses null); "command": "" is Prefect's own
# flow-run command (the workspace supervisor, then the engine); the role ships `python -m
# prefect.engine`. "worker_vars" / "server_vars": other role variables (--stack own
# redeploys its server when "server_vars" differ from the configuration before).
# The 2026-12-02 shipped defaults, before the stub CA and the larger database pool.
BEFORE_STUB = {"worker_api_http_stub_ca": False}
STUB = {"worker_api_http_stub_ca": True}
PREFECT_POOL = {"server_database_pool_size": 5, "server_database_max_overflow": 10}
CONFIGS = {
    # Prefect's defaults: no --limit, queries every 10 s, Prefect's flow-run command,
    # certifi's bundle for the API clients' TLS contexts.
    "stock-1": {"replicas": 1, "limit": 0, "env": {}, "command": "", "worker_vars": BEFORE_STUB},
    # What the collection ships (worker_limit, worker_process_command, ...).
    "defaults-1": {"replicas": 1},
    "defaults-3": {"replicas": 3},
    # The shipped settings plus the opt-in stub CA (worker_api_http_stub_ca).
    "defaults-stub-3": {"replicas": 3, "worker_vars": STUB},
    # The shipped settings but Prefect's flow-run command: the command's share.
    "stockcmd-3": {"replicas": 3, "command": ""},
    # The shipped settings, querying every 5 s instead of Prefect's 10 s.
    "defaults-3-q5": {"replicas": 3, "env": {"PREFECT_WORKER_QUERY_SECONDS": "5"}},
    # The shipped defaults of 2026-12-02 (second measurement): no stub CA, Prefect's pool.
    "before-3": {"replicas": 3, "worker_vars": BEFORE_STUB, "server_vars": PREFECT_POOL},
    # The stub CA alone (Prefect's database pool).
    "stubca-3": {"replicas": 3, "worker_vars": STUB, "server_vars": PREFECT_POOL},
    # Earlier configurations (results/throughput-2026-12-02.md), Prefect's command.
    "tuned-1": {"replicas": 1, "limit": 4, "env": {"PREFECT_WORKER_QUERY_SECONDS": "5"}, "command": ""},
    "tuned-3": {"replicas": 3, "limit": 4, "env": {"PREFECT_WORKER_QUERY_SECONDS": "5"}, "command": ""},
}
ROLE_DEFAULTS = os.path.join(ROOT, "roles", "worker", "defaults", "main.yml")

STACKS = {
    "own": {"inventory": "benchmarks/throughput/inventory.yml", "server": "bench-tp-server-default",
            "postgres": "bench-tp-postgres", "worker_prefix": "bench-tp-worker-bench-pool-",
            "api_url": "http://127.0.0.1:4290/api",
            "auth_file": "~/.selfhosted-prefect/bench-throughput/tenant-default-auth-password"},
    "quickstart": {"inventory": "inventories/single-host", "server": "prefect-server-default",
                   "postgres": "prefect-postgres", "worker_prefix": "prefect-worker-bench-pool-",
                   "api_url": "http://localhost:4200/api",
                   "auth_file": "~/.selfhosted-prefect/localhost/tenant-default-auth-password"},
}
# What --stack own creates besides containers (removed at the end unless --keep).
OWN_NETWORKS = ("bench-tp-default", "bench-tp-db-default")
OWN_VOLUMES = ("bench-tp-postgres-data",)
OWN_DIRS = ("/etc/selfhosted-prefect/bench-tp", "~/.selfhosted-prefect/bench-throughput")

FLOW_CODE = '''from prefect import flow


@flow
def bench(i: int = 0) -> int:
    return i
'''


def parse_time(value):
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def docker(*args, check=False):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout.strip()


def cgroup_cpu(name):
    """CPU-seconds one running container used so far, None when not running."""
    cid = docker("inspect", "--format", "{{.Id}}", name)
    return container_cpu_seconds(cid) if cid else None


class CpuMeter:
    """CPU-seconds of containers by group, sampled while a burst runs: a container that
    restarts (an out-of-memory kill) gets a new cgroup whose counter starts at 0, so
    every sample adds what each counter grew since the one before."""

    def __init__(self, groups):
        self.groups = groups  # {group: [container names]}
        self.last = {n: cgroup_cpu(n) for names in groups.values() for n in names}
        self.total = {g: 0.0 for g in groups}

    def sample(self):
        for group, names in self.groups.items():
            for name in names:
                now, before = cgroup_cpu(name), self.last.get(name)
                if now is None:
                    continue
                self.total[group] += now - before if before is not None and now >= before else now
                self.last[name] = now


def oom_kills(prefix):
    """Restarts of the bench workers and whether the last one was an out-of-memory kill."""
    out = docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}").split()
    found = {}
    for name in out:
        info = docker("inspect", "--format", "{{.RestartCount}} {{.State.OOMKilled}}", name).split()
        if info:
            found[name] = {"restarts": int(info[0]), "oom_killed": info[1] == "true"}
    return found


def pg_sessions(stack):
    """Connections PostgreSQL accepted so far into the tenants' databases (pg_stat_database)."""
    out = docker("exec", stack["postgres"], "psql", "-U", "postgres", "-Atc",
                 "select coalesce(sum(sessions), 0) from pg_stat_database where datname like 'prefect%'")
    return int(out) if out.isdigit() else None


def playbook(stack, path, extra=None):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", stack["inventory"], path]
    if extra is not None:
        cmd += ["-e", json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{path} failed:\n" + proc.stdout[-3000:] + proc.stderr[-2000:])


def deploy_workers(stack, config):
    extra = {"bench_replicas": config["replicas"]}
    for key in ("limit", "env", "command"):
        if key in config:
            extra["bench_" + key] = config[key]
    extra.update(config.get("worker_vars", {}))
    playbook(stack, "benchmarks/throughput/workers.yml", extra)


def role_defaults():
    """The worker role's shipped values the configurations may leave out (a flat read of
    defaults/main.yml: no YAML library in this script's requirements)."""
    found = {}
    with open(ROLE_DEFAULTS, encoding="utf-8") as fh:
        for line in fh:
            for key in ("worker_limit", "worker_process_command", "worker_env"):
                if line.startswith(key + ":"):
                    found[key] = line.split(":", 1)[1].strip()
    return found


def own_stack_up(subnets, server_vars=None):
    """The --stack own server and PostgreSQL, with networks on the given subnets made
    first (the server role then finds them), so they never take a subnet someone else's
    scenario expects; server_vars: server role variables (the role restarts the server
    when its environment changes)."""
    for name, subnet, internal in ((OWN_NETWORKS[0], subnets[0], []), (OWN_NETWORKS[1], subnets[1], ["--internal"])):
        if not docker("network", "ls", "-q", "--filter", f"name=^{name}$"):
            docker("network", "create", *internal, "--subnet", subnet, name, check=True)
    playbook(STACKS["own"], "benchmarks/throughput/stack.yml", server_vars or {})


def own_stack_down():
    names = docker("ps", "-a", "--filter", "name=^bench-tp-", "--format", "{{.Names}}").split()
    if names:
        docker("rm", "-f", *names)
    for name in OWN_NETWORKS:
        docker("network", "rm", name)
    for name in OWN_VOLUMES:
        docker("volume", "rm", name)
    for path in OWN_DIRS:
        subprocess.run(["rm", "-rf", os.path.expanduser(path)], check=False)


async def ensure_deployment(client):
    os.makedirs(FLOWS_DIR, exist_ok=True)
    with open(os.path.join(FLOWS_DIR, "bench.py"), "w", encoding="utf-8") as fh:
        fh.write(FLOW_CODE)
    flow = (await client.post("/flows/", json={"name": "bench"})).raise_for_status().json()
    body = {
        "name": "bench-local", "flow_id": flow["id"], "work_pool_name": "bench-pool",
        "entrypoint": "bench.py:bench", "path": FLOWS_DIR,
        "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": FLOWS_DIR}}],
        "parameter_openapi_schema": {"type": "object", "properties": {"i": {"type": "integer"}}},
    }
    return (await client.post("/deployments/", json=body)).raise_for_status().json()["id"]


async def wait_ready(client, replicas, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = (await client.post("/work_pools/bench-pool/workers/filter", json={})).raise_for_status().json()
        online = [w for w in workers if w.get("status") == "ONLINE"
                  and parse_time(w["last_heartbeat_time"]) > dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)]
        if len(online) >= replicas:
            return
        await asyncio.sleep(2)
    sys.exit(f"fewer than {replicas} bench-pool workers online after {timeout} s")


async def burst(client, deployment_id, runs, timeout, meter):
    sem = asyncio.Semaphore(10)

    async def create(i):
        async with sem:
            resp = await client.post(f"/deployments/{deployment_id}/create_flow_run", json={"parameters": {"i": i}})
            return resp.raise_for_status().json()["id"]

    ids = await asyncio.gather(*(create(i) for i in range(runs)))
    deadline = time.monotonic() + timeout
    final = []
    while time.monotonic() < deadline:
        meter.sample()
        resp = await client.post("/flow_runs/filter", json={"flow_runs": {"id": {"any_": ids}}, "limit": 200})
        final = resp.raise_for_status().json()
        if all(r["state_type"] in FINAL for r in final) and len(final) == runs:
            return final, False
        await asyncio.sleep(2)
    return final, True


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def load():
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


def settings_of(config, defaults):
    """What a configuration runs with, the role's defaults filled in, for the table."""
    limit = config["limit"] if "limit" in config else defaults.get("worker_limit")
    command = config["command"] if "command" in config else defaults.get("worker_process_command")
    env = config["env"] if "env" in config else defaults.get("worker_env")
    return {"limit": "none" if limit in (None, "null", 0, "0") else int(limit),
            "command": command if command not in (None, "null", "") else "Prefect's (workspace supervisor)",
            "query_s": (env or {}).get("PREFECT_WORKER_QUERY_SECONDS", "10") if isinstance(env, dict) else "10"}


async def measure(stack, name, config, runs, timeout, auth):
    deploy_workers(stack, config)
    async with httpx.AsyncClient(base_url=stack["api_url"], auth=auth, timeout=60) as client:
        deployment_id = await ensure_deployment(client)
        # Runs of an earlier burst (e.g. stuck Pending after a worker died) would be
        # picked up or counted: delete every run of the deployment first.
        old = (await client.post("/flow_runs/filter", json={
            "deployments": {"id": {"any_": [deployment_id]}}, "limit": 200})).raise_for_status().json()
        for run in old:
            await client.delete(f"/flow_runs/{run['id']}")
        await wait_ready(client, config["replicas"])
        workers = docker("ps", "--filter", f"name=^{stack['worker_prefix']}", "--format", "{{.Names}}").split()
        meter = CpuMeter({"workers": workers, "server": [stack["server"]], "postgres": [stack["postgres"]]})
        load_before = load()
        sessions_before = pg_sessions(stack)
        started = time.monotonic()
        final, timed_out = await burst(client, deployment_id, runs, timeout, meter)
        wall = time.monotonic() - started
        meter.sample()
        sessions = pg_sessions(stack)
    done = [r for r in final if r["state_type"] == "COMPLETED"]
    created = [parse_time(r["created"]) for r in final]
    ended = [parse_time(r["end_time"]) for r in done if r["end_time"]]
    latency = [(parse_time(r["end_time"]) - parse_time(r["expected_start_time"])).total_seconds()
               for r in done if r["end_time"] and r["expected_start_time"]]
    span = (max(ended) - min(created)).total_seconds() if ended else float("nan")
    per_run = {g: round(v / max(len(done), 1), 2) for g, v in meter.total.items()}
    return {
        "config": name, "replicas": config["replicas"], **settings_of(config, role_defaults()),
        "env": config.get("env"), "runs": runs, "completed": len(done),
        "failures": sum(1 for r in final if r["state_type"] in FINAL - {"COMPLETED"}),
        "not_final": runs - sum(1 for r in final if r["state_type"] in FINAL), "timed_out": timed_out,
        "runs_per_min": round(len(done) / span * 60, 1) if ended else 0.0,
        "p50_s": round(percentile(latency, 0.5), 1), "p95_s": round(percentile(latency, 0.95), 1),
        "cpu_s_per_completed_run": {**per_run, "total": round(sum(meter.total.values()) / max(len(done), 1), 2)},
        "cpu_s_total": {g: round(v, 1) for g, v in meter.total.items()},
        "worker_vars": config.get("worker_vars", {}), "server_vars": config.get("server_vars", {}),
        "pg_sessions_per_run": (round((sessions - sessions_before) / max(len(done), 1), 2)
                                if None not in (sessions, sessions_before) else None),
        "wall_s": round(wall, 1), "load_before": load_before, "load_after": load(),
        "states": {s: sum(1 for r in final if r["state_name"] == s) for s in sorted({r["state_name"] for r in final})},
        "worker_oom_kills": oom_kills(stack["worker_prefix"]),
    }


def table(results, runs, note):
    base = next((r for r in results if r["config"] == "stock-1"), None)
    lines = [f"# throughput {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {runs} runs per config",
             "", note, "",
             "| config | workers | limit | query s | flow-run command | other role variables | completed/min | failed "
             "| not final | p50 s | p95 s | CPU s/run workers | server | PostgreSQL | total | PostgreSQL connections/run "
             "| vs stock-1 | load before-after |",
             "|" + " --- |" * 18]
    for r in results:
        ratio = (f"{r['runs_per_min'] / base['runs_per_min']:.2f}x" if base and base["runs_per_min"] else "n/a")
        cpu = r["cpu_s_per_completed_run"]
        other = ", ".join(f"{k}={v}" for k, v in {**r["worker_vars"], **r["server_vars"]}.items()) or "shipped"
        lines.append(f"| {r['config']} | {r['replicas']} | {r['limit']} | {r['query_s']} | {r['command']} | {other} "
                     f"| {r['runs_per_min']} | {r['failures']} | {r['not_final']} | {r['p50_s']} | {r['p95_s']} "
                     f"| {cpu['workers']} | {cpu['server']} | {cpu['postgres']} | {cpu['total']} "
                     f"| {r['pg_sessions_per_run']} | {ratio} | {r['load_before']} - {r['load_after']} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--configs", default="stock-1,defaults-1,defaults-3",
                        help="comma-separated, measured in this order; one of: " + ", ".join(CONFIGS))
    parser.add_argument("--timeout", type=int, default=420,
                        help="seconds to wait for one burst; runs not final by then are counted as not final")
    parser.add_argument("--stack", choices=sorted(STACKS), default="own")
    parser.add_argument("--subnets", default="172.31.230.0/24,172.31.231.0/24",
                        help="--stack own: subnets of its server network and its database network")
    parser.add_argument("--keep", action="store_true", help="--stack own: leave the stack running")
    parser.add_argument("--note", default="", help="added to the result file (conditions, what else ran)")
    parser.add_argument("--suffix", default="", help="result file throughput-<date>-<suffix>.md instead of throughput-<date>.md")
    args = parser.parse_args()
    stack = STACKS[args.stack]
    names = args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    if args.stack != "own" and any(CONFIGS[n].get("server_vars") for n in names):
        sys.exit("configurations with server_vars redeploy the server: only with --stack own")
    results = []
    try:
        server_vars = None
        if args.stack == "own":
            server_vars = CONFIGS[names[0]].get("server_vars", {})
            own_stack_up(args.subnets.split(","), server_vars)
        with open(os.path.expanduser(stack["auth_file"]), encoding="utf-8") as fh:
            auth = ("admin", fh.read().strip())
        for name in names:
            if args.stack == "own" and CONFIGS[name].get("server_vars", {}) != server_vars:
                server_vars = CONFIGS[name].get("server_vars", {})
                own_stack_up(args.subnets.split(","), server_vars)
            result = asyncio.run(measure(stack, name, CONFIGS[name], args.runs, args.timeout, auth))
            results.append(result)
            print(json.dumps(result), flush=True)
        if args.stack == "quickstart":
            # Leave one idle bench worker at the shipped settings.
            deploy_workers(stack, {"replicas": 1})
    finally:
        if args.stack == "own" and not args.keep:
            own_stack_down()
    if not results:
        return
    text = table(results, args.runs, args.note or f"Stack: {args.stack}.")
    print(text)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    out = os.path.join(ROOT, "benchmarks", "results", f"throughput-{dt.date.today()}{'-' + args.suffix if args.suffix else ''}.md")
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(text + "\n\n```\n" + "\n".join(json.dumps(r) for r in results) + "\n```\n\n")
    print("written to", out)


if __name__ == "__main__":
    main()
