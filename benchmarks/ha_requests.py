# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API requests per second through the front door: an ha tenant with 1 and 3 replicas (a benchmark, not a test).

From the collection root, on a machine with Docker and `wrk` (apt-get install wrk):

    .venv/bin/python benchmarks/ha_requests.py [--duration 30] [--connections 16] [--keep]

It deploys the server role on this machine's Docker engine (ansible-playbook,
connection local, benchmarks/ha_requests/inventory.yml and play.yml; every container,
network and volume is named habench-*, host directories are under /tmp/habench) with
two tenants behind one TLS front door (server_tls: true, so every figure goes
through the same HAProxy, HTTPS with keep-alive connections):

    hbench    mode ha, 1 API replica, then 3 (the role re-run scales it), then 1 again
    hbsingle  mode single (one server container: API and background services)

It puts 200 flow runs (of one flow, mixed states, tagged) into each tenant, then
drives each target with wrk (one thread, N keep-alive connections, basic auth) on
two endpoints: `POST /api/flow_runs/filter` (tag filter, sort, limit 50) and
`GET /api/health`. Per measurement it prints requests/s, p50/p95/p99 latency,
errors (socket errors and HTTP >= 400), CPU-seconds of each of the stack's
containers over the window (cgroup cpuacct), wrk's own CPU, the machine's busy
CPU-seconds (/proc/stat) and load average, and how HAProxy spread the requests over
the replicas (its request log). Figures go to benchmarks/results/ha_requests-<date>.md.
Everything the benchmark made is removed at the end unless --keep is given (images
are left: other stacks use them).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import httpx

from cgroup import container_cpu_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "benchmarks", "ha_requests")
WORK = "/tmp/habench"
PREFIX = "habench-"  # containers, networks and volumes (inventory.yml)
NETWORK_BASE = "habench"
FRONT_DOOR = "habench-front-door"
HA, SINGLE = "hbench", "hbsingle"
AUTH_USER = "admin"
FINAL_TYPES = ["COMPLETED", "FAILED", "CANCELLED", "SCHEDULED"]

WRK_SCRIPT = """-- Written by benchmarks/ha_requests.py
wrk.method = {method}
wrk.body = {body}
wrk.headers["Authorization"] = {auth}
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'HABENCH {{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""

FILTER_BODY = {
    "flow_runs": {"tags": {"all_": ["habench"]}},
    "sort": "EXPECTED_START_TIME_DESC",
    "limit": 50,
}
ENDPOINTS = {
    "filter": ("POST", "/api/flow_runs/filter", json.dumps(FILTER_BODY)),
    "health": ("GET", "/api/health", ""),
}


def lua_str(value):
    return json.dumps(value)  # a JSON string is a valid Lua string literal here (ASCII, no control chars)


def sh(cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check).stdout


def docker_names(kind):
    if kind == "container":
        out = sh(["docker", "ps", "-a", "--format", "{{.Names}}"])
    elif kind == "network":
        out = sh(["docker", "network", "ls", "--format", "{{.Name}}"])
    else:
        out = sh(["docker", "volume", "ls", "--format", "{{.Name}}"])
    return [n for n in out.split() if n.startswith(PREFIX) or n == NETWORK_BASE]


def cleanup(reason):
    """Remove what this benchmark made, by its own names only (never a prune)."""
    containers, networks, volumes = docker_names("container"), docker_names("network"), docker_names("volume")
    if containers or networks or volumes or os.path.exists(WORK):
        print(f"cleanup ({reason}): containers {containers}, networks {networks}, volumes {volumes}, {WORK}", flush=True)
    for name in containers:
        sh(["docker", "rm", "-f", "-v", name], check=False)
    for name in networks:
        sh(["docker", "network", "rm", name], check=False)
    for name in volumes:
        sh(["docker", "volume", "rm", name], check=False)
    shutil.rmtree(WORK, ignore_errors=True)
    left = docker_names("container") + docker_names("network") + docker_names("volume")
    if left:
        print(f"WARNING: not removed: {left}", flush=True)


def ansible_env():
    """The collection resolvable as selfhosted.prefect from this checkout (a symlink in WORK)."""
    coll = os.path.join(WORK, "collections", "ansible_collections", "selfhosted")
    os.makedirs(coll, exist_ok=True)
    link = os.path.join(coll, "prefect")
    if not os.path.islink(link):
        os.symlink(ROOT, link)
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(WORK, "collections"),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "true",
        "PATH": bindir + os.pathsep + env.get("PATH", ""),
        "VIRTUAL_ENV": os.path.dirname(bindir),
        "ANSIBLE_FORCE_COLOR": "false",
    })
    return env


def deploy(args, replicas):
    extra = {
        "ansible_python_interpreter": sys.executable,
        "server_tenants": [
            {"name": HA, "port": args.port, "mode": "ha", "replicas": replicas},
            {"name": SINGLE, "port": args.port + 1, "mode": "single"},
        ],
        "server_host_secrets_dir": f"{WORK}/host-secrets",
        "server_front_door_dir": f"{WORK}/front-door",
        "server_ha_build_dir": f"{WORK}/build",
        "prefect_secrets_dir": f"{WORK}/secrets",
    }
    vars_file = os.path.join(WORK, "vars.json")
    with open(vars_file, "w", encoding="utf-8") as fh:
        json.dump(extra, fh)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.path.join(HERE, "inventory.yml"),
           os.path.join(HERE, "play.yml"), "-e", "@" + vars_file]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    with open(os.path.join(WORK, f"playbook-{replicas}-{int(time.time())}.log"), "w", encoding="utf-8") as fh:
        fh.write(proc.stdout + proc.stderr)
    recap = re.search(r"^localhost\s+:.*$", proc.stdout, re.MULTILINE)
    print(f"deploy ha replicas={replicas}: rc {proc.returncode}, {took:.0f} s, {recap.group(0) if recap else ''}", flush=True)
    if proc.returncode != 0:
        raise RuntimeError("the server role failed:\n" + proc.stdout[-4000:] + proc.stderr[-2000:])
    return round(took, 1)


def container_ids(names):
    ids = {}
    for name in names:
        cid = sh(["docker", "inspect", "--format", "{{.Id}}", name], check=False).strip()
        if cid:
            ids[name] = cid
    return ids


def cgroup_cpu(cid):
    """CPU-seconds a container used so far (NaN when its cgroup is not found)."""
    used = container_cpu_seconds(cid)
    return float("nan") if used is None else used


def machine_busy():
    """Busy CPU-seconds of the whole machine so far (every process, not only ours)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


def health_state(name):
    return sh(["docker", "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", name],
              check=False).strip()


def wait_healthy(names, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {n: health_state(n) for n in names}
        if all(s == "healthy" for s in states.values()):
            return
        time.sleep(3)
    raise RuntimeError(f"not healthy after {timeout} s: {states}")


def api_client(port, auth, ca):
    return httpx.Client(base_url=f"https://127.0.0.1:{port}/api", auth=auth, verify=ca, timeout=60)


def seed(port, auth, ca, runs):
    """One flow and N flow runs (mixed states and start times, tagged) in a tenant."""
    with api_client(port, auth, ca) as client:
        flow = client.post("/flows/", json={"name": "habench"}).raise_for_status().json()
        now = dt.datetime.now(dt.UTC)
        for i in range(runs):
            state_type = FINAL_TYPES[i % len(FINAL_TYPES)]
            body = {
                "flow_id": flow["id"], "name": f"habench-{i:04d}", "tags": ["habench", f"batch-{i % 10}"],
                "parameters": {"i": i, "note": "x" * 64},
                "state": {"type": state_type, "name": state_type.capitalize(),
                          "state_details": {"scheduled_time": (now + dt.timedelta(minutes=i - runs)).isoformat()}
                          if state_type == "SCHEDULED" else {}},
            }
            client.post("/flow_runs/", json=body).raise_for_status()
        got = client.post("/flow_runs/filter", json=FILTER_BODY).raise_for_status().json()
        count = client.post("/flow_runs/count", json={"flow_runs": FILTER_BODY["flow_runs"]}).raise_for_status().json()
    if len(got) != min(FILTER_BODY["limit"], count) or count < runs:
        raise RuntimeError(f"seeding port {port}: filter returned {len(got)} runs, count {count}")
    return count


def write_wrk_script(endpoint, auth):
    method, _path, body = ENDPOINTS[endpoint]
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    path = os.path.join(WORK, f"wrk-{endpoint}.lua")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(WRK_SCRIPT.format(method=lua_str(method), body=lua_str(body), auth=lua_str("Basic " + token)))
    return path


def run_wrk(args, port, endpoint, duration):
    url = f"https://127.0.0.1:{port}{ENDPOINTS[endpoint][1]}"
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration}s", "--timeout", "10s",
           "-s", os.path.join(WORK, f"wrk-{endpoint}.lua"), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("HABENCH ")), None)
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    result = json.loads(line[len("HABENCH "):])
    result["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def balance(since, until, tenant):
    """Requests HAProxy logged per server of a tenant's backend between two times."""
    proc = subprocess.run(["docker", "logs", "--since", f"{since:.3f}", "--until", f"{until:.3f}", FRONT_DOOR],
                          capture_output=True, text=True, check=False)
    text = proc.stdout + proc.stderr
    counts, statuses = {}, {}
    for match in re.finditer(rf"\] tenant-{tenant}~? tenant-{tenant}/(\S+) \S+ (\d+) ", text):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        if not match.group(2).startswith("2"):
            statuses[match.group(2)] = statuses.get(match.group(2), 0) + 1
    # A replica the health checks took out of the balance (each event is logged twice).
    downs = len(re.findall(rf"^\[WARNING\].*Server tenant-{tenant}/\S+ is DOWN", text, re.MULTILINE))
    return counts, downs, statuses


def short(name):
    return name.removeprefix(PREFIX)


def measure(args, label, tenant, port, replicas, endpoint):
    api = [f"{PREFIX}server-{tenant}-{i}" for i in range(1, replicas + 1)] if tenant == HA else [f"{PREFIX}server-{tenant}"]
    # Warm-up (not counted) until HAProxy sends to every replica (a new one is UP
    # after two passed health checks).
    for _attempt in range(12):
        t0 = time.time()
        run_wrk(args, port, endpoint, args.warmup)
        seen = balance(t0, time.time() + 1, tenant)[0]
        if all(seen.get(n, 0) > 0 for n in api):
            break
        time.sleep(5)
    else:
        raise RuntimeError(f"{label}: HAProxy did not send to every replica during warm-up: {seen}")
    time.sleep(2)
    ids = container_ids([n for n in docker_names("container") if not n.endswith("-check")])
    cpu0 = {n: cgroup_cpu(c) for n, c in ids.items()}
    busy0, load0, t0 = machine_busy(), loadavg(), time.time()
    wrk = run_wrk(args, port, endpoint, args.duration)
    t1, busy1, load1 = time.time(), machine_busy(), loadavg()
    cpu = {short(n): round(cgroup_cpu(c) - cpu0[n], 2) for n, c in ids.items()}
    spread, downs, statuses = balance(t0, t1 + 1, tenant)
    seconds = wrk["duration_us"] / 1e6
    stack = sum(cpu.values())
    server_side = sum(v for n, v in cpu.items() if n.startswith(f"server-{tenant}"))
    row = {
        "label": label, "tenant": tenant, "mode": "ha" if tenant == HA else "single", "replicas": replicas,
        "endpoint": endpoint, "requests": wrk["requests"], "seconds": round(seconds, 1),
        "rps": round(wrk["requests"] / seconds, 1),
        "p50_ms": round(wrk["p50_us"] / 1000, 1), "p95_ms": round(wrk["p95_us"] / 1000, 1),
        "p99_ms": round(wrk["p99_us"] / 1000, 1), "max_ms": round(wrk["max_us"] / 1000, 1),
        "errors": {k: wrk[k] for k in ("connect", "read", "write", "status", "timeout") if wrk[k]},
        "cpu_s": cpu, "stack_cpu_s": round(stack, 2), "client_cpu_s": round(wrk["client_cpu_s"], 2),
        "machine_busy_cpu_s": round(busy1 - busy0, 1),
        "others_cpu_s": round((busy1 - busy0) - stack - wrk["client_cpu_s"], 1),
        "server_cpu_ms_per_request": round(server_side / max(wrk["requests"], 1) * 1000, 2),
        "balance": {short(k): v for k, v in sorted(spread.items())}, "down_events": downs,
        "non_2xx_logged": statuses,
        "load_before": load0, "load_after": load1,
    }
    print(json.dumps(row), flush=True)
    return row


def idle_cpu(label, seconds):
    """CPU-seconds per second of each of the stack's containers with no requests (after a deploy)."""
    ids = container_ids([n for n in docker_names("container") if not n.endswith("-check")])
    cpu0, t0 = {n: cgroup_cpu(c) for n, c in ids.items()}, time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - t0
    row = {"label": label, "seconds": round(took, 1),
           "cpu_per_s": {short(n): round((cgroup_cpu(c) - cpu0[n]) / took, 3) for n, c in ids.items()}}
    print(json.dumps(row), flush=True)
    return row


def idle_table(idles):
    lines = ["| stack state | idle CPU-s per second, by container | total |", "| --- | --- | ---: |"]
    for r in idles:
        per = ", ".join(f"{n} {v}" for n, v in sorted(r["cpu_per_s"].items()))
        lines.append(f"| {r['label']} | {per} | {round(sum(r['cpu_per_s'].values()), 3)} |")
    return "\n".join(lines)


def fmt_errors(errors):
    return sum(errors.values()) if not errors else " ".join(f"{k} {v}" for k, v in errors.items())


def cpu_group(row, group):
    t = row["tenant"]
    names = {
        "api": lambda n: n.startswith(f"server-{t}") and not n.endswith("-services"),
        "services": lambda n: n == f"server-{t}-services",
        "redis": lambda n: n.startswith("redis-"),
        "postgres": lambda n: n == "postgres",
        "front door": lambda n: n == "front-door",
        "other tenant": lambda n: n.startswith("server-") and not n.startswith(f"server-{t}"),
    }[group]
    return round(sum(v for n, v in row["cpu_s"].items() if names(n)), 2)


def tables(rows, args):
    ones = {}
    for r in rows:
        if r["mode"] == "ha" and r["replicas"] == 1:
            ones.setdefault(r["endpoint"], []).append(r["rps"])
    base = {k: sum(v) / len(v) for k, v in ones.items()}
    lines = [("| target | replicas | endpoint | requests/s | vs ha x1 (mean of its runs) | p50 ms | p95 ms | p99 ms | errors "
              "| CPU-s API | CPU-s services | CPU-s postgres | CPU-s redis | CPU-s front door | CPU-s other tenant "
              "| CPU-s client (wrk) | CPU-s machine busy | CPU-s not ours | server ms CPU/request | load before -> after |"),
             ("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: "
              "| ---: | ---: | ---: | ---: | --- |")]
    for r in rows:
        ratio = f"{r['rps'] / base[r['endpoint']]:.2f}x" if base.get(r["endpoint"]) else "n/a"
        lines.append(
            f"| {r['label']} | {r['replicas']} | {r['endpoint']} | {r['rps']} | {ratio} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['p99_ms']} | {fmt_errors(r['errors'])} | {cpu_group(r, 'api')} | {cpu_group(r, 'services')} "
            f"| {cpu_group(r, 'postgres')} | {cpu_group(r, 'redis')} | {cpu_group(r, 'front door')} "
            f"| {cpu_group(r, 'other tenant')} | {r['client_cpu_s']} | {r['machine_busy_cpu_s']} | {r['others_cpu_s']} "
            f"| {r['server_cpu_ms_per_request']} | {r['load_before']} -> {r['load_after']} |")
    lines += ["", "Requests per replica (HAProxy's log) and CPU-seconds per API container:", "",
              "| target | endpoint | requests per server | replica DOWN events | non-2xx in HAProxy's log | CPU-s per API container |",
              "| --- | --- | --- | ---: | --- | --- |"]
    for r in rows:
        per = ", ".join(f"{n} {v}" for n, v in r["cpu_s"].items()
                        if n.startswith(f"server-{r['tenant']}") and not n.endswith("-services"))
        lines.append(f"| {r['label']} | {r['endpoint']} | {', '.join(f'{k} {v}' for k, v in r['balance'].items())} | {r['down_events']} "
                     f"| {r.get('non_2xx_logged') or 0} | {per} |")
    return "\n".join(lines)


def run(args, notes):
    os.makedirs(WORK, exist_ok=True)
    rows, deploys, idles = [], [], []
    deploys.append(("ha x1 + single (first deploy)", deploy(args, 1)))
    wait_healthy([f"{PREFIX}server-{HA}-1", f"{PREFIX}server-{SINGLE}"])
    ca = f"{WORK}/secrets/server-tls/ca.pem"
    auths = {}
    for tenant in (HA, SINGLE):
        with open(f"{WORK}/secrets/tenant-{tenant}-auth-password", encoding="utf-8") as fh:
            auths[tenant] = (AUTH_USER, fh.read().strip())
    ports = {HA: args.port, SINGLE: args.port + 1}
    for tenant in (HA, SINGLE):
        count = seed(ports[tenant], auths[tenant], ca, args.runs)
        notes.append(f"tenant {tenant}: {count} flow runs tagged habench")
    # One set of credentials per tenant: the wrk scripts carry their header.
    endpoints = args.endpoints.split(",")

    def measure_all(label, tenant, replicas):
        for endpoint in endpoints:
            write_wrk_script(endpoint, auths[tenant])
            rows.append(measure(args, label, tenant, ports[tenant], replicas, endpoint))

    time.sleep(args.settle)
    idles.append(idle_cpu("ha x1 + single", args.idle))
    measure_all("single", SINGLE, 1)
    measure_all("ha x1", HA, 1)
    deploys.append(("ha 1 -> 3", deploy(args, 3)))
    wait_healthy([f"{PREFIX}server-{HA}-{i}" for i in (1, 2, 3)])
    time.sleep(args.settle)
    idles.append(idle_cpu("ha x3 + single", args.idle))
    measure_all("ha x3", HA, 3)
    if not args.no_repeat:
        deploys.append(("ha 3 -> 1", deploy(args, 1)))
        time.sleep(args.settle)
        idles.append(idle_cpu("ha x1 + single (after 3 -> 1)", args.idle))
        measure_all("ha x1 again", HA, 1)
    left = sorted(n for n in docker_names("container") if n.startswith(f"{PREFIX}server-{HA}-"))
    notes.append(f"after scaling back: {left}")
    return rows, deploys, idles


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of the warm-up run before each measurement")
    parser.add_argument("--settle", type=int, default=15, help="seconds to wait after a deploy before measuring")
    parser.add_argument("--idle", type=int, default=20, help="seconds of the idle CPU window after each deploy")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive client connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--runs", type=int, default=200, help="flow runs put into each tenant first")
    parser.add_argument("--endpoints", default="filter,health")
    parser.add_argument("--port", type=int, default=14500, help="port of the ha tenant (the single tenant: +1)")
    parser.add_argument("--no-repeat", action="store_true", help="skip the second ha x1 measurement after 3 -> 1")
    parser.add_argument("--keep", action="store_true", help="leave the stack and /tmp/habench")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--note", default="", help="added to the result file")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    cleanup("left by an earlier run")
    uptime0 = sh(["uptime"]).strip()
    notes = []
    started = time.monotonic()
    try:
        rows, deploys, idles = run(args, notes)
    except (RuntimeError, httpx.HTTPError, OSError, KeyboardInterrupt) as exc:
        print(f"FAILED: {exc!r}", file=sys.stderr)
        if not args.keep:
            cleanup("after a failure")
        sys.exit(1)
    uptime1 = sh(["uptime"]).strip()
    if args.keep:
        print(f"kept: containers, networks and volumes named {PREFIX}*, {WORK}")
    else:
        cleanup("end of the benchmark")
    table = tables(rows, args) + "\n\nThe stack idle (no requests; the other tenant idles in every row above too):\n\n" + idle_table(idles)
    print(table)
    head = [f"# ha_requests {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores", "",
            (f"wrk: {args.threads} thread, {args.connections} keep-alive connections, {args.duration} s per "
             f"measurement after a {args.warmup} s warm-up; HTTPS through the front door (server_tls: true) for every row; "
             f"`filter` = POST /api/flow_runs/filter {json.dumps(FILTER_BODY)}, `health` = GET /api/health; "
             f"{args.runs} flow runs seeded per tenant."), "",
            f"- uptime before: `{uptime0}`", f"- uptime after: `{uptime1}`",
            f"- playbook runs: {', '.join(f'{k} {v} s' for k, v in deploys)}",
            f"- total time: {time.monotonic() - started:.0f} s"] + [f"- {n}" for n in notes]
    if args.note:
        head += ["", args.note]
    text = ("\n".join(head) + "\n\n" + table + "\n\n```\n" + "\n".join(json.dumps(r) for r in rows + idles)
            + "\n```\n\n")
    if not args.no_write:
        os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
        out = os.path.join(ROOT, "benchmarks", "results", f"ha_requests-{dt.date.today()}.md")
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(text)
        print("written to", out)


if __name__ == "__main__":
    main()
