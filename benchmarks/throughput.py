# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flow-run throughput of process workers on the quickstart's stack (a benchmark, not a test).

After `scripts/quickstart`, from the collection root:

    .venv/bin/python benchmarks/throughput.py [--runs 100] [--configs stock-1,tuned-1,tuned-3]

For each worker configuration it (re)deploys the benchmark's own pool `bench-pool`
with the worker role (benchmarks/throughput/workers.yml; the quickstart's pools are
not touched), creates N flow runs of a trivial flow (code in the shared flows
directory) at once through the REST API, waits until every run is final, and prints:
completed runs per minute (first run created -> last run ended), failures, p50/p95
of scheduled -> ended per run, and CPU-seconds per run of the stack's containers
(server, PostgreSQL, the bench workers; read from their cgroups, so other work on
the machine is not counted). Configurations are measured in one invocation so their
ratios compare like with like. Results are appended to benchmarks/results/.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS_DIR = "/srv/prefect/flows/bench"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

# Worker settings under test. "stock": the worker role with Prefect's own defaults
# (no --limit, query every 10 s, prefetch 10 s). "tuned": the defaults this
# collection ships (worker_limit 4, queries every 5 s).
CONFIGS = {
    "stock-1": {"replicas": 1, "limit": None, "env": {}},
    "tuned-1": {"replicas": 1, "limit": 4, "env": {"PREFECT_WORKER_QUERY_SECONDS": "5"}},
    "tuned-3": {"replicas": 3, "limit": 4, "env": {"PREFECT_WORKER_QUERY_SECONDS": "5"}},
}

FLOW_CODE = '''from prefect import flow


@flow
def bench(i: int = 0) -> int:
    return i
'''


def parse_time(value):
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def cpu_seconds(names):
    """Sum of cpuacct usage (cgroup v1 or v2) of the named running containers, in seconds."""
    total = 0.0
    for name in names:
        cid = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", name],
                             capture_output=True, text=True, check=False).stdout.strip()
        if not cid:
            continue
        for path, scale, key in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9, None),
                                 (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6, "usage_usec")):
            if os.path.exists(path):
                with open(path, encoding="ascii") as fh:
                    text = fh.read()
                if key:
                    text = dict(line.split() for line in text.splitlines())[key]
                total += int(text) / scale
                break
    return total


def oom_kills():
    """Restarts of the bench workers and whether the last one was an out-of-memory kill."""
    out = subprocess.run(["docker", "ps", "-a", "--filter", "name=prefect-worker-bench-pool-", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=True).stdout.split()
    found = {}
    for name in out:
        info = subprocess.run(["docker", "inspect", "--format", "{{.RestartCount}} {{.State.OOMKilled}}", name],
                              capture_output=True, text=True, check=False).stdout.split()
        if info:
            found[name] = {"restarts": int(info[0]), "oom_killed": info[1] == "true"}
    return found


def stack_containers():
    out = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=True).stdout
    return [n for n in out.split() if n in ("prefect-server-default", "prefect-postgres")
            or n.startswith("prefect-worker-bench-pool-")]


def deploy_workers(config):
    extra = {"bench_replicas": config["replicas"], "bench_limit": config["limit"], "bench_env": config["env"]}
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", "inventories/single-host",
           "benchmarks/throughput/workers.yml", "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit("worker role failed:\n" + proc.stdout[-3000:] + proc.stderr[-2000:])


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


async def burst(client, deployment_id, runs, timeout):
    sem = asyncio.Semaphore(10)

    async def create(i):
        async with sem:
            resp = await client.post(f"/deployments/{deployment_id}/create_flow_run", json={"parameters": {"i": i}})
            return resp.raise_for_status().json()["id"]

    ids = await asyncio.gather(*(create(i) for i in range(runs)))
    deadline = time.monotonic() + timeout
    final = []
    while time.monotonic() < deadline:
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


async def measure(name, config, runs, timeout, api_url, auth):
    deploy_workers(config)
    async with httpx.AsyncClient(base_url=api_url, auth=auth, timeout=60) as client:
        deployment_id = await ensure_deployment(client)
        # Runs of an earlier burst (e.g. stuck Pending after a worker died) would be
        # picked up or counted: delete every run of the deployment first.
        old = (await client.post("/flow_runs/filter", json={
            "deployments": {"id": {"any_": [deployment_id]}}, "limit": 200})).raise_for_status().json()
        for run in old:
            await client.delete(f"/flow_runs/{run['id']}")
        await wait_ready(client, config["replicas"])
        containers = stack_containers()
        cpu0 = cpu_seconds(containers)
        started = time.monotonic()
        final, timed_out = await burst(client, deployment_id, runs, timeout)
        wall = time.monotonic() - started
        cpu = cpu_seconds(containers) - cpu0
    done = [r for r in final if r["state_type"] == "COMPLETED"]
    created = [parse_time(r["created"]) for r in final]
    ended = [parse_time(r["end_time"]) for r in done if r["end_time"]]
    latency = [(parse_time(r["end_time"]) - parse_time(r["expected_start_time"])).total_seconds()
               for r in done if r["end_time"] and r["expected_start_time"]]
    span = (max(ended) - min(created)).total_seconds() if ended else float("nan")
    return {
        "config": name, "replicas": config["replicas"], "limit": config["limit"], "env": config["env"],
        "runs": runs, "completed": len(done),
        "failures": sum(1 for r in final if r["state_type"] in FINAL - {"COMPLETED"}),
        "not_final": runs - sum(1 for r in final if r["state_type"] in FINAL), "timed_out": timed_out,
        "runs_per_min": round(len(done) / span * 60, 1) if ended else 0.0,
        "p50_s": round(percentile(latency, 0.5), 1), "p95_s": round(percentile(latency, 0.95), 1),
        "cpu_s_per_run": round(cpu / runs, 2), "wall_s": round(wall, 1),
        "states": {s: sum(1 for r in final if r["state_name"] == s) for s in sorted({r["state_name"] for r in final})},
        "worker_oom_kills": oom_kills(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--configs", default="stock-1,tuned-1,tuned-3")
    parser.add_argument("--timeout", type=int, default=420,
                        help="seconds to wait for one burst; runs not final by then count as failures")
    parser.add_argument("--api-url", default="http://localhost:4200/api")
    parser.add_argument("--auth-file", default=os.path.expanduser("~/.selfhosted-prefect/localhost/tenant-default-auth-password"))
    args = parser.parse_args()
    with open(args.auth_file, encoding="utf-8") as fh:
        auth = ("admin", fh.read().strip())
    results = []
    for name in args.configs.split(","):
        result = asyncio.run(measure(name, CONFIGS[name], args.runs, args.timeout, args.api_url, auth))
        results.append(result)
        print(json.dumps(result), flush=True)
    # Leave one idle bench worker at the shipped settings.
    deploy_workers({"replicas": 1, "limit": 4, "env": {}})
    base = next((r for r in results if r["config"] == "stock-1"), None)
    lines = [f"# throughput {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {args.runs} runs per config", "",
             "| config | workers | limit | completed/min | failed | not final at timeout | p50 s | p95 s | CPU s/run | vs stock |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ratio = (f"{r['runs_per_min'] / base['runs_per_min']:.2f}x" if base and base["runs_per_min"] else "n/a")
        lines.append(f"| {r['config']} | {r['replicas']} | {r['limit']} | {r['runs_per_min']} | {r['failures']} | {r['not_final']} "
                     f"| {r['p50_s']} | {r['p95_s']} | {r['cpu_s_per_run']} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    out = os.path.join(ROOT, "benchmarks", "results", f"throughput-{dt.date.today()}.md")
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(table + "\n\n```\n" + "\n".join(json.dumps(r) for r in results) + "\n```\n\n")
    print("written to", out)


if __name__ == "__main__":
    main()
