# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flow-run throughput of process and docker workers (a benchmark, not a test).

From the collection root:

    .venv/bin/python benchmarks/throughput.py [--runs 100] [--configs stock-1,defaults-1,defaults-3,docker-1]
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

Configurations named docker-* measure a docker pool instead (`bench-docker-pool`,
worker_type docker, one DinD sidecar per worker, the role's defaults otherwise): the
flow's code is in a small image built on this host's engine FROM the worker image and
loaded into each sidecar's engine before the burst (timed, not counted in runs/min); the
deployment runs it with image_pull_policy Never. The sidecars' CPU (their engines and
the flow-run containers) is a column of its own.

A configuration with "ref" (a git commit or tag) deploys its workers with the worker role
and benchmarks/throughput/workers.yml of that commit instead of this checkout's: a `git
worktree` of it in a temporary directory, made resolvable as `selfhosted.prefect` through
an ANSIBLE_COLLECTIONS_PATH of its own (removed at the end). The server and PostgreSQL
stay this checkout's. So `docker-3-before` is the docker pool exactly as the role was at
0aae6e9, before issue 27 (unprivileged sidecar with 37 capabilities, runc, Prefect's
flow-run command), measured in the same invocation as the role now.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx

from cgroup import container_cpu_seconds, container_has_child_cgroup, docker_cgroup_cpu_seconds

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
    # Docker pools: each worker with its DinD sidecar (worker_docker_engine dind), flow runs
    # are containers of an image holding the flow; the role's defaults otherwise (since
    # issue 27: the gVisor sandbox, runsc as the sidecar engine's default runtime, and
    # worker_process_command, python -m prefect.engine, as the pool's command).
    "docker-1": {"replicas": 1, "source": "docker"},
    "docker-3": {"replicas": 3, "source": "docker"},
    # The role's sandbox with Prefect's own flow-run command (prefect flow-run execute): the
    # sandbox's share against docker-3-before, the command's against docker-3.
    "docker-3-stockcmd": {"replicas": 3, "source": "docker", "command": ""},
    # docker-3 with the command as a deployment's job variable (the 2026-12-06 split; since
    # issue 27 the pool's template has it already, so this is docker-3 again).
    "docker-3-enginecmd": {"replicas": 3, "source": "docker", "job_variables": {"command": "python -m prefect.engine"}},
    # The docker pool as the worker role and the benchmark were at 0aae6e9, before issue 27:
    # the unprivileged sidecar (37 capabilities, seccomp and AppArmor unconfined, the host's
    # /sys/fs/cgroup, runc), Prefect's flow-run command (that role's docker pools ignored
    # worker_process_command); the 2026-12-06 docker-3.
    "docker-3-before": {"replicas": 3, "source": "docker", "ref": "0aae6e9"},
    # The same with python -m prefect.engine as a job variable (runc and the new command):
    # the command's share under runc, the sandbox's against docker-3.
    "docker-3-before-enginecmd": {"replicas": 3, "source": "docker", "ref": "0aae6e9",
                                  "job_variables": {"command": "python -m prefect.engine"}},
}
# The benchmark's pool per source; their workers are <worker container prefix><pool>-<n>
# (docker: and <...>-<n>-dind, the sidecar).
POOLS = {"process": "bench-pool", "docker": "bench-docker-pool"}
ROLE_DEFAULTS = os.path.join(ROOT, "roles", "worker", "defaults", "main.yml")

STACKS = {
    "own": {"inventory": "benchmarks/throughput/inventory.yml", "server": "bench-tp-server-default",
            "postgres": "bench-tp-postgres", "container_prefix": "bench-tp-worker-",
            "api_url": "http://127.0.0.1:4290/api",
            "auth_file": "~/.selfhosted-prefect/bench-throughput/tenant-default-auth-password"},
    "quickstart": {"inventory": "inventories/single-host", "server": "prefect-server-default",
                   "postgres": "prefect-postgres", "container_prefix": "prefect-worker-",
                   "api_url": "http://localhost:4200/api",
                   "auth_file": "~/.selfhosted-prefect/localhost/tenant-default-auth-password"},
}
# What --stack own creates besides containers (removed at the end unless --keep).
OWN_NETWORKS = ("bench-tp-default", "bench-tp-db-default")
OWN_VOLUMES = ("bench-tp-postgres-data",)
# The docker source's image: the worker image plus the flow file (built on this host's
# engine; it stays).
FLOW_IMAGE = "bench-tp-flow:1"
IMAGE_FLOWS_DIR = "/opt/prefect/flows"
# Job variables of the docker deployment besides its image.
DOCKER_JOB_VARIABLES = {"image_pull_policy": "Never"}
# Sidecars whose engine runs runc (the role before issue 27: its unprivileged DinD with the
# host's /sys/fs/cgroup mounted into the sidecar; or --dind-privileged): the sidecar's
# engine puts its containers' cgroups beside the sidecar's (/docker/<id> of the host), not
# inside it, so a flow-run container's CPU-seconds would go with it when it ends. The
# benchmark then adds a relative cgroup_parent (relative to the cgroup of the sidecar's
# engine) to the pool's job configuration after the role set it (Prefect's docker template
# offers no variable for it): the flow-run containers nest in their sidecar's cgroup, whose
# counter keeps their CPU, and it checks afterwards that they did. Only where it is counted
# changes. Sidecars whose engine runs runsc (the role's gVisor sandbox since issue 27) get
# no cgroup_parent: runsc runs with --ignore-cgroups and the sidecar has no host cgroups,
# so a flow run's sandbox (its Sentry and gofer processes) stays in the sidecar's cgroup
# and is counted there anyway (the run policy worker would also refuse cgroup_parent).
# For both, cpu_s_engine_total against the groups' sum (other containers included) shows
# whether anything was missed.
FLOW_CGROUP = "bench-flows"
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


def source_of(config):
    return config.get("source", "process")


def worker_prefix(stack, config):
    """Names of a configuration's containers (workers, and their sidecars: <worker>-dind)."""
    return stack["container_prefix"] + POOLS[source_of(config)] + "-"


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


def playbook(stack, path, extra=None, env=None):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", stack["inventory"], path]
    if extra is not None:
        cmd += ["-e", json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        sys.exit(f"{path} failed:\n" + proc.stdout[-3000:] + proc.stderr[-2000:])


class RefTrees:
    """Checkouts of other commits (configurations with "ref"): a `git worktree` each in one
    temporary directory, and a collections path per commit in which
    ansible_collections/selfhosted/prefect links to it (as scripts/env.sh does for this
    checkout). close() removes the worktrees and the directory."""

    def __init__(self):
        self.tmp = None
        self.trees = {}

    def get(self, ref):
        """(the checkout's root, its ANSIBLE_COLLECTIONS_PATH) of `ref`."""
        if ref not in self.trees:
            self.tmp = self.tmp or tempfile.mkdtemp(prefix="bench-tp-refs-")
            tree = os.path.join(self.tmp, f"tree-{ref}")
            proc = subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, ref],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"git worktree add {ref} failed:\n{proc.stderr}")
            coll = os.path.join(self.tmp, f"collections-{ref}")
            os.makedirs(os.path.join(coll, "ansible_collections", "selfhosted"))
            os.symlink(tree, os.path.join(coll, "ansible_collections", "selfhosted", "prefect"))
            self.trees[ref] = (tree, coll)
        return self.trees[ref]

    def close(self):
        for tree, _link in self.trees.values():
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree], capture_output=True, check=False)
        if self.tmp:
            subprocess.run(["rm", "-rf", self.tmp], check=False)
        subprocess.run(["git", "-C", ROOT, "worktree", "prune"], capture_output=True, check=False)
        self.trees, self.tmp = {}, None


REF_TREES = RefTrees()
# The ref whose role last deployed each source's pool (None: this checkout).
DEPLOYED_REF = {}


def deploy_workers(stack, config, dind_privileged=False):
    """The bench pool's workers of `config` with this checkout's worker role and workers.yml,
    or those of config["ref"]. A pool deployed by another ref before is scaled to 0 by that
    ref first (workers, sidecars and their storage volumes go: each side starts from empty
    sidecar engines, and no role has to adopt the other's containers)."""
    source, ref = source_of(config), config.get("ref")
    if source in DEPLOYED_REF and DEPLOYED_REF[source] != ref and config["replicas"] > 0:
        deploy_workers(stack, {"replicas": 0, "source": source, "ref": DEPLOYED_REF[source]}, dind_privileged)
    extra = {"bench_replicas": config["replicas"], "bench_type": source,
             "bench_pool": POOLS[source], "bench_dind_privileged": dind_privileged}
    for key in ("limit", "env", "command"):
        if key in config:
            extra["bench_" + key] = config[key]
    extra.update(config.get("worker_vars", {}))
    path, env = "benchmarks/throughput/workers.yml", None
    if ref:
        tree, coll = REF_TREES.get(ref)
        path, env = os.path.join(tree, path), {"ANSIBLE_COLLECTIONS_PATH": coll}
    playbook(stack, path, extra, env)
    DEPLOYED_REF[source] = ref


def sidecar_runtime(name):
    """The default runtime of a sidecar's engine (runc, or runsc in the role's sandbox)."""
    return docker("exec", name, "docker", "info", "--format", "{{.DefaultRuntime}}") or "unknown"


def role_defaults():
    """The worker role's shipped values the configurations may leave out (a flat read of
    defaults/main.yml: no YAML library in this script's requirements)."""
    found = {}
    with open(ROLE_DEFAULTS, encoding="utf-8") as fh:
        for line in fh:
            for key in ("worker_limit", "worker_process_command", "worker_env", "worker_image", "worker_image_tag"):
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
    # The sidecars' storage volumes (docker configurations) besides the stack's own.
    volumes = [v for v in docker("volume", "ls", "-q").split() if v.startswith("bench-tp-")]
    for name in (*OWN_VOLUMES, *volumes):
        docker("volume", "rm", name)
    for path in OWN_DIRS:
        subprocess.run(["rm", "-rf", os.path.expanduser(path)], check=False)


def build_flow_image(base):
    """The docker source's image: `base` (the worker image) with the bench flow in
    IMAGE_FLOWS_DIR, built on this host's engine (the classic builder: Debian's docker.io
    has no buildx). Returns the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="bench-tp-image-") as ctx:
        with open(os.path.join(ctx, "bench.py"), "w", encoding="utf-8") as fh:
            fh.write(FLOW_CODE)
        with open(os.path.join(ctx, "Dockerfile"), "w", encoding="utf-8") as fh:
            fh.write(f"FROM {base}\nCOPY bench.py {IMAGE_FLOWS_DIR}/bench.py\n")
        started = time.monotonic()
        proc = subprocess.run(["docker", "build", "-q", "-t", FLOW_IMAGE, ctx], capture_output=True, text=True,
                              env={**os.environ, "DOCKER_BUILDKIT": "0"}, check=False)
    if proc.returncode != 0:
        sys.exit(f"docker build of {FLOW_IMAGE} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return round(time.monotonic() - started, 1)


def load_image(sidecars, timeout=120):
    """`docker save FLOW_IMAGE | docker exec -i <sidecar> docker load` into each sidecar's
    engine (after waiting for it to answer): seconds per sidecar."""
    times = {}
    for name in sidecars:
        deadline = time.monotonic() + timeout
        while subprocess.run(["docker", "exec", name, "docker", "info"], capture_output=True, check=False).returncode:
            if time.monotonic() > deadline:
                sys.exit(f"the engine of {name} did not answer in {timeout} s")
            time.sleep(1)
        started = time.monotonic()
        with subprocess.Popen(["docker", "save", FLOW_IMAGE], stdout=subprocess.PIPE) as save:
            proc = subprocess.run(["docker", "exec", "-i", name, "docker", "load", "-q"], stdin=save.stdout,
                                  capture_output=True, text=True, check=False)
            save.stdout.close()
        if proc.returncode != 0 or save.returncode != 0:
            sys.exit(f"loading {FLOW_IMAGE} into {name} failed:\n{proc.stderr[-2000:]}")
        times[name] = round(time.monotonic() - started, 1)
    return times


async def ensure_deployment(client, source, job_variables=None):
    flow = (await client.post("/flows/", json={"name": "bench"})).raise_for_status().json()
    body = {
        "flow_id": flow["id"], "work_pool_name": POOLS[source], "entrypoint": "bench.py:bench",
        "parameter_openapi_schema": {"type": "object", "properties": {"i": {"type": "integer"}}},
    }
    if source == "docker":
        # As selfhosted.prefect.deployment registers a docker source: the image in the job
        # variables, the pull step changes to the code's directory in it.
        body.update({"name": "bench-docker", "path": IMAGE_FLOWS_DIR,
                     "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": IMAGE_FLOWS_DIR}}],
                     "job_variables": {"image": FLOW_IMAGE, **DOCKER_JOB_VARIABLES, **(job_variables or {})}})
    else:
        os.makedirs(FLOWS_DIR, exist_ok=True)
        with open(os.path.join(FLOWS_DIR, "bench.py"), "w", encoding="utf-8") as fh:
            fh.write(FLOW_CODE)
        body.update({"name": "bench-local", "path": FLOWS_DIR,
                     "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": FLOWS_DIR}}]})
    return (await client.post("/deployments/", json=body)).raise_for_status().json()["id"]


async def wait_ready(client, pool, replicas, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = (await client.post(f"/work_pools/{pool}/workers/filter", json={})).raise_for_status().json()
        online = [w for w in workers if w.get("status") == "ONLINE"
                  and parse_time(w["last_heartbeat_time"]) > dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)]
        if len(online) >= replicas:
            return
        await asyncio.sleep(2)
    sys.exit(f"fewer than {replicas} {pool} workers online after {timeout} s")


async def burst(client, deployment_id, runs, timeout, meter):
    sem = asyncio.Semaphore(10)

    async def create(i):
        async with sem:
            # A refused connection never reached the server: try again (once a burst of a
            # loaded machine lost its connection to the published port for a moment).
            for attempt in range(5):
                try:
                    resp = await client.post(f"/deployments/{deployment_id}/create_flow_run", json={"parameters": {"i": i}})
                    return resp.raise_for_status().json()["id"]
                except httpx.ConnectError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(2)

    ids = await asyncio.gather(*(create(i) for i in range(runs)))
    deadline = time.monotonic() + timeout
    final = []
    while time.monotonic() < deadline:
        meter.sample()
        try:
            resp = await client.post("/flow_runs/filter", json={"flow_runs": {"id": {"any_": ids}}, "limit": 200})
        except httpx.TransportError:
            await asyncio.sleep(2)
            continue
        final = resp.raise_for_status().json()
        if all(r["state_type"] in FINAL for r in final) and len(final) == runs:
            return final, False
        await asyncio.sleep(2)
    return final, True


async def run_phases(client, done):
    """Medians (s) of the completed runs' phases, from their state histories: scheduled ->
    pending (waiting for a worker's slot and its next query), pending -> running (the worker
    starts a process or a container; its Python starts, imports Prefect, runs the pull step,
    reads the run), running -> completed (the flow and the engine's end)."""
    sem = asyncio.Semaphore(10)

    async def history(run):
        async with sem:
            return (await client.get("/flow_run_states/", params={"flow_run_id": run["id"]})).raise_for_status().json()

    spans = {"scheduled_to_pending": [], "pending_to_running": [], "running_to_completed": []}
    for states in await asyncio.gather(*(history(r) for r in done)):
        first = {}
        for state in sorted(states, key=lambda st: st["timestamp"]):
            first.setdefault(state["type"], parse_time(state["timestamp"]))
        for key in spans:
            a, b = (n.upper() for n in key.split("_to_"))
            if a in first and b in first:
                spans[key].append((first[b] - first[a]).total_seconds())
    return {k: round(percentile(v, 0.5), 2) for k, v in spans.items()}


def container_phases(sidecars, since):
    """Medians (s) of the flow-run containers' life in the sidecars' engines since `since`
    (epoch seconds), from their events: create -> start, start -> die (the container's
    process: Python, Prefect's import, the run), die -> destroy (auto_remove)."""
    spans = {"create_to_start": [], "start_to_die": [], "die_to_destroy": []}
    for name in sidecars:
        out = docker("exec", name, "docker", "events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                     "--filter", "type=container", "--format", "{{json .}}")
        seen = {}
        for line in out.splitlines():
            event = json.loads(line)
            seen.setdefault(event["id"], {}).setdefault(event["Action"], event["timeNano"] / 1e9)
        for times in seen.values():
            for key in spans:
                a, b = key.split("_to_")
                if a in times and b in times:
                    spans[key].append(times[b] - times[a])
    return {k: round(percentile(v, 0.5), 2) for k, v in spans.items()}


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


async def measure(stack, name, config, runs, timeout, auth, dind_privileged=False):
    source, pool, prefix = source_of(config), POOLS[source_of(config)], worker_prefix(stack, config)
    # Idle workers of the other source's pool (an earlier configuration) would poll and
    # cost CPU beside the burst: none while this one runs.
    for other, other_pool in POOLS.items():
        if other != source and docker("ps", "-aq", "--filter", f"name=^{stack['container_prefix']}{other_pool}-"):
            deploy_workers(stack, {"replicas": 0, "source": other, "ref": DEPLOYED_REF.get(other)}, dind_privileged)
    deploy_workers(stack, config, dind_privileged)
    containers = docker("ps", "--filter", f"name=^{prefix}", "--format", "{{.Names}}").split()
    sidecars = sorted(n for n in containers if n.endswith("-dind"))
    workers = sorted(n for n in containers if not n.endswith("-dind"))
    image_load = load_image(sidecars) if source == "docker" else {}
    if image_load:
        print(f"{name}: {FLOW_IMAGE} loaded into " + ", ".join(f"{k} in {v} s" for k, v in image_load.items()), flush=True)
    runtimes = sorted({sidecar_runtime(n) for n in sidecars})
    nest = runtimes == ["runc"]
    patched = time.monotonic()
    if source == "docker":
        # runc: the flow-run containers' cgroups into their sidecar's (FLOW_CGROUP); runsc:
        # none (an earlier configuration's must not stay in the template either).
        async with httpx.AsyncClient(base_url=stack["api_url"], auth=auth, timeout=60) as client:
            template = (await client.get(f"/work_pools/{pool}")).raise_for_status().json()["base_job_template"]
            kwargs = template["job_configuration"].get("container_create_kwargs")
            if nest:
                template["job_configuration"]["container_create_kwargs"] = {"cgroup_parent": FLOW_CGROUP}
            elif isinstance(kwargs, dict) and "cgroup_parent" in kwargs:
                template["job_configuration"]["container_create_kwargs"] = "{{ container_create_kwargs }}"
            (await client.patch(f"/work_pools/{pool}", json={"base_job_template": template})).raise_for_status()
    async with httpx.AsyncClient(base_url=stack["api_url"], auth=auth, timeout=60) as client:
        deployment_id = await ensure_deployment(client, source, config.get("job_variables", {}))
        template = (await client.get(f"/work_pools/{pool}")).raise_for_status().json()["base_job_template"]
        # Runs of an earlier burst (e.g. stuck Pending after a worker died) would be
        # picked up or counted: delete every run of the deployment first.
        old = (await client.post("/flow_runs/filter", json={
            "deployments": {"id": {"any_": [deployment_id]}}, "limit": 200})).raise_for_status().json()
        for run in old:
            await client.delete(f"/flow_runs/{run['id']}")
        await wait_ready(client, pool, config["replicas"])
        if source == "docker":
            # Workers read their pool's template again at each heartbeat (30 s by default).
            await asyncio.sleep(max(0.0, patched + 35 - time.monotonic()))
        groups = {"workers": workers, "dind": sidecars, "server": [stack["server"]], "postgres": [stack["postgres"]]}
        # Every other running container of the engine (another stack beside the benchmark):
        # not the benchmark's, counted only to check cpu_s_engine_total against the sum.
        mine = {n for names in groups.values() for n in names}
        groups["others"] = [n for n in docker("ps", "--format", "{{.Names}}").split() if n not in mine]
        meter = CpuMeter(groups)
        engine_before = docker_cgroup_cpu_seconds()
        load_before = load()
        sessions_before = pg_sessions(stack)
        started, started_epoch = time.monotonic(), time.time()
        final, timed_out = await burst(client, deployment_id, runs, timeout, meter)
        wall = time.monotonic() - started
        meter.sample()
        engine_after = docker_cgroup_cpu_seconds()
        sessions = pg_sessions(stack)
        done = [r for r in final if r["state_type"] == "COMPLETED"]
        phases = await run_phases(client, done)
    if source == "docker":
        phases.update(container_phases(sidecars, started_epoch - 1))
    # Docker runs' infrastructure_pid is <the worker's engine URL>:<container id>.
    runs_by_sidecar = {n: sum(1 for r in final if f"/{n}:" in (r.get("infrastructure_pid") or "")) for n in sidecars}
    created = [parse_time(r["created"]) for r in final]
    ended = [parse_time(r["end_time"]) for r in done if r["end_time"]]
    latency = [(parse_time(r["end_time"]) - parse_time(r["expected_start_time"])).total_seconds()
               for r in done if r["end_time"] and r["expected_start_time"]]
    span = (max(ended) - min(created)).total_seconds() if ended else float("nan")
    others = meter.total.pop("others")
    per_run = {g: round(v / max(len(done), 1), 2) for g, v in meter.total.items()}
    settings = settings_of(config, role_defaults())
    unnested = [n for n in sidecars if nest and runs_by_sidecar[n]
                and not container_has_child_cgroup(docker("inspect", "--format", "{{.Id}}", n), FLOW_CGROUP)]
    if unnested:
        print(f"{name}: WARNING the flow-run containers of {', '.join(unnested)} were not in its cgroup: "
              "the DinD column misses them", flush=True)
    if source == "docker":
        # Docker pools ignore worker_process_command: the pool's template (or the
        # deployment's job variables) decides, else Prefect's `prefect flow-run execute`.
        command = (config.get("job_variables", {}).get("command")
                   or (template["variables"]["properties"].get("command") or {}).get("default"))
        settings["command"] = command or "Prefect's (prefect flow-run execute)"
    return {
        "config": name, "source": source, "replicas": config["replicas"], **settings,
        "env": config.get("env"), "runs": runs, "completed": len(done),
        "failures": sum(1 for r in final if r["state_type"] in FINAL - {"COMPLETED"}),
        "not_final": runs - sum(1 for r in final if r["state_type"] in FINAL), "timed_out": timed_out,
        "runs_per_min": round(len(done) / span * 60, 1) if ended else 0.0,
        "p50_s": round(percentile(latency, 0.5), 1), "p95_s": round(percentile(latency, 0.95), 1),
        "cpu_s_per_completed_run": {**per_run, "total": round(sum(meter.total.values()) / max(len(done), 1), 2)},
        "cpu_s_total": {g: round(v, 1) for g, v in meter.total.items()},
        # Every container of the engine (other work on it included, and containers the
        # groups above miss): equal to the groups' sum when nothing else runs.
        "cpu_s_engine_total": (round(engine_after - engine_before, 1) if None not in (engine_before, engine_after) else None),
        # The other containers' CPU during the burst (not in the columns): engine total minus
        # the groups' sum minus this is what the columns missed.
        "cpu_s_other_containers": round(others, 1),
        "ref": config.get("ref"), "dind_runtime": "/".join(runtimes) or None,
        "flow_cgroup_nested": nest,
        "worker_vars": config.get("worker_vars", {}), "server_vars": config.get("server_vars", {}),
        "job_variables": config.get("job_variables", {}),
        "pg_sessions_per_run": (round((sessions - sessions_before) / max(len(done), 1), 2)
                                if None not in (sessions, sessions_before) else None),
        "phases_p50_s": phases, "runs_by_sidecar": runs_by_sidecar,
        "image_load_s": image_load, "flow_cgroups_not_nested": unnested,
        "wall_s": round(wall, 1), "load_before": load_before, "load_after": load(),
        "states": {s: sum(1 for r in final if r["state_name"] == s) for s in sorted({r["state_name"] for r in final})},
        "worker_oom_kills": oom_kills(prefix),
    }


def table(results, runs, note, base_name):
    base = next((r for r in results if r["config"] == base_name), None)
    lines = [f"# throughput {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {runs} runs per config",
             "", note, "",
             "| config | source | workers | limit | query s | flow-run command | other role variables | completed/min | failed "
             "| not final | p50 s | p95 s | p50 s scheduled-pending / pending-running / running-completed "
             "| CPU s/run workers | DinD sidecars (flow-run containers) | server | PostgreSQL "
             f"| total | PostgreSQL connections/run | vs {base_name} | image load s | load before-after |",
             "|" + " --- |" * 22]
    for r in results:
        ratio = (f"{r['runs_per_min'] / base['runs_per_min']:.2f}x" if base and base["runs_per_min"] else "n/a")
        cpu = r["cpu_s_per_completed_run"]
        shown = {**({"ref": r["ref"]} if r.get("ref") else {}),
                 **({"sidecar runtime": r["dind_runtime"]} if r.get("dind_runtime") else {}),
                 **r["worker_vars"], **r["server_vars"], **r["job_variables"]}
        other = ", ".join(f"{k}={v}" for k, v in shown.items())
        loads = " / ".join(str(v) for v in r["image_load_s"].values()) or "-"
        phases = " / ".join(str(r["phases_p50_s"][k]) for k in ("scheduled_to_pending", "pending_to_running", "running_to_completed"))
        lines.append(f"| {r['config']} | {r['source']} | {r['replicas']} | {r['limit']} | {r['query_s']} | {r['command']} "
                     f"| {other or 'shipped'} | {r['runs_per_min']} | {r['failures']} | {r['not_final']} | {r['p50_s']} "
                     f"| {r['p95_s']} | {phases} | {cpu['workers']} | {cpu['dind'] if r['source'] == 'docker' else '-'} "
                     f"| {cpu['server']} | {cpu['postgres']} | {cpu['total']} | {r['pg_sessions_per_run']} | {ratio} "
                     f"| {loads} | {r['load_before']} - {r['load_after']} |")
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
    parser.add_argument("--keep", action="store_true",
                        help="--stack own: leave the stack running; --stack quickstart: leave the docker pool's workers")
    parser.add_argument("--base", default="stock-1", help="the configuration the completed/min ratios are against")
    parser.add_argument("--dind-privileged", action="store_true",
                        help="docker configurations: privileged DinD sidecars instead of the role's default gVisor "
                             "sandbox (this lab refuses --privileged)")
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

    def stop(signum, _frame):
        # SIGTERM (a deadline): the configuration under way ends as failed, the table of
        # those measured before it is written and the stack removed as at the end.
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    try:
        server_vars = None
        if args.stack == "own":
            server_vars = CONFIGS[names[0]].get("server_vars", {})
            own_stack_up(args.subnets.split(","), server_vars)
        with open(os.path.expanduser(stack["auth_file"]), encoding="utf-8") as fh:
            auth = ("admin", fh.read().strip())
        if any(source_of(CONFIGS[n]) == "docker" for n in names):
            defaults = role_defaults()
            base = f"{defaults['worker_image']}:{defaults['worker_image_tag']}"
            print(f"{FLOW_IMAGE} (FROM {base}) built in {build_flow_image(base)} s", flush=True)
        for name in names:
            if args.stack == "own" and CONFIGS[name].get("server_vars", {}) != server_vars:
                server_vars = CONFIGS[name].get("server_vars", {})
                own_stack_up(args.subnets.split(","), server_vars)
            try:
                result = asyncio.run(measure(stack, name, CONFIGS[name], args.runs, args.timeout, auth,
                                             args.dind_privileged))
            except (Exception, SystemExit) as exc:  # pylint: disable=broad-exception-caught
                # Keep the configurations measured so far: the table is written with them.
                print(f"{name} failed, the configurations after it are not measured: {exc}", flush=True)
                failed = f"{name} failed ({(str(exc).strip().splitlines() or [repr(exc)])[0][:200]}); the configurations after it were not measured."
                args.note = f"{args.note} {failed}".strip()
                break
            results.append(result)
            print(json.dumps(result), flush=True)
        if args.stack == "quickstart":
            # Leave one idle bench worker at the shipped settings.
            deploy_workers(stack, {"replicas": 1})
    finally:
        if args.stack == "own" and not args.keep:
            own_stack_down()
        elif args.stack == "quickstart" and not args.keep and any(source_of(CONFIGS[n]) == "docker" for n in names):
            # No docker workers, sidecars or sidecar volumes of the benchmark's left.
            deploy_workers(stack, {"replicas": 0, "source": "docker", "ref": DEPLOYED_REF.get("docker")},
                           args.dind_privileged)
        REF_TREES.close()
    if not results:
        return
    text = table(results, args.runs, args.note or f"Stack: {args.stack}.", args.base)
    print(text)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    out = os.path.join(ROOT, "benchmarks", "results", f"throughput-{dt.date.today()}{'-' + args.suffix if args.suffix else ''}.md")
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(text + "\n\n```\n" + "\n".join(json.dumps(r) for r in results) + "\n```\n\n")
    print("written to", out)


if __name__ == "__main__":
    main()
