# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU-seconds and API traffic of one flow-run process, per variant of its environment
(a probe, not a test).

After `benchmarks/throughput.py --keep` (the benchmark's own stack is up), from the
collection root:

    python benchmarks/throughput/engine_probe.py [--rounds 8] [--variants certifi,stub,stub-gc,no-csrf]

It starts a container `bench-tp-probe` of the worker image on the stack's network, with
bench-pool's API settings file, the flows directory and the worker role's stub CA, and a
pool and deployment `bench-probe` that no worker serves. Then, round after round, it
creates one run per variant and runs it in that container with `engine_count.py`
(`python -m prefect.engine` with counters) under the variant's environment, one at a
time, variants alternating so that the machine's load hits all alike. It prints each
variant's CPU-seconds of the flow-run process (median, mean, all), and the requests,
websockets and TLS contexts of its first run. The container is removed at the end.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import throughput as tp  # noqa: E402 pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
STACK = tp.STACKS["own"]
PROBE = "bench-tp-probe"
STUB = "/etc/selfhosted-prefect/http-api-stub-ca.pem"
VARIANTS = {
    # What the worker role shipped before worker_api_http_stub_ca: certifi's bundle.
    "certifi": {},
    "stub": {"PREFECT_API_SSL_CERT_FILE": STUB},
    "stub-gc": {"PREFECT_API_SSL_CERT_FILE": STUB, "PROBE_GC": "freeze"},
    "no-csrf": {"PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "false",
                "PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED": "false"},
}


def start_probe():
    """The probe container: bench-pool worker 1's image, network and settings file."""
    worker = STACK["worker_prefix"] + "1"
    info = json.loads(tp.docker("inspect", worker, check=True))[0]
    settings = next(b for b in info["HostConfig"]["Binds"] if b.split(":")[1] == "/run/secrets/prefect-profiles.toml")
    env = [e for e in info["Config"]["Env"] if e.split("=", 1)[0] in
           ("PREFECT_API_URL", "PREFECT_PROFILES_PATH", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY")]
    tp.docker("rm", "-f", PROBE)
    stub = os.path.join(tp.ROOT, "roles", "worker", "files", "http-api-stub-ca.pem")
    args = ["run", "-d", "--name", PROBE, "--memory", "1g", "--network", info["HostConfig"]["NetworkMode"],
            "-v", settings, "-v", f"{tp.FLOWS_DIR}:{tp.FLOWS_DIR}:ro", "-v", f"{stub}:{STUB}:ro",
            "-v", f"{HERE}:/probe:ro"]
    for item in env:
        args += ["-e", item]
    tp.docker(*args, info["Config"]["Image"], "sleep", "infinity", check=True)


async def deployment(client):
    await client.post("/work_pools/", json={"name": "bench-probe", "type": "process"})  # 409 when it exists
    flow = (await client.post("/flows/", json={"name": "bench"})).raise_for_status().json()
    body = {"name": "bench-probe", "flow_id": flow["id"], "work_pool_name": "bench-probe",
            "entrypoint": "bench.py:bench", "path": tp.FLOWS_DIR,
            "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": tp.FLOWS_DIR}}],
            "parameter_openapi_schema": {"type": "object", "properties": {"i": {"type": "integer"}}}}
    return (await client.post("/deployments/", json=body)).raise_for_status().json()["id"]


async def one_run(client, deployment_id, env):
    run = (await client.post(f"/deployments/{deployment_id}/create_flow_run",
                             json={"parameters": {"i": 0}})).raise_for_status().json()
    args = ["exec", "-e", f"PREFECT__FLOW_RUN_ID={run['id']}"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    proc = subprocess.run(["docker", *args, PROBE, "python", "/probe/engine_count.py"],
                          capture_output=True, text=True, check=False)
    state = (await client.get(f"/flow_runs/{run['id']}")).raise_for_status().json()["state_name"]
    line = next((x for x in proc.stderr.splitlines() if x.startswith("PROBE ")), None)
    if proc.returncode != 0 or line is None or state != "Completed":
        sys.exit(f"run {run['id']} ended {state}, exit {proc.returncode}:\n{proc.stderr[-2000:]}")
    return json.loads(line[len("PROBE "):])


async def main(args):
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    with open(os.path.expanduser(STACK["auth_file"]), encoding="utf-8") as fh:
        auth = ("admin", fh.read().strip())
    start_probe()
    results = {n: [] for n in names}
    try:
        async with httpx.AsyncClient(base_url=STACK["api_url"], auth=auth, timeout=120) as client:
            deployment_id = await deployment(client)
            for round_no in range(1, args.rounds + 1):
                for name in names:
                    results[name].append(await one_run(client, deployment_id, VARIANTS[name]))
                    print(round_no, name, results[name][-1]["cpu_s"], tp.load(), flush=True)
    finally:
        tp.docker("rm", "-f", PROBE)
    base = statistics.median(r["cpu_s"] for r in results[names[0]])
    for name in names:
        cpu = [r["cpu_s"] for r in results[name]]
        print(json.dumps({"variant": name, "env": VARIANTS[name], "runs": len(cpu),
                          "cpu_s_median": round(statistics.median(cpu), 3), "cpu_s_mean": round(statistics.mean(cpu), 3),
                          "vs_first_median": round(statistics.median(cpu) / base, 3), "cpu_s": cpu,
                          "first_run_counts": results[name][0]["counts"]}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--variants", default="certifi,stub,stub-gc,no-csrf")
    asyncio.run(main(parser.parse_args()))
