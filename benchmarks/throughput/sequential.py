# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU-seconds of one flow run by container, runs one at a time (a probe, not a test).

After `benchmarks/throughput.py --keep` (the benchmark's own stack and one bench-pool
worker are up), from the collection root:

    python benchmarks/throughput/sequential.py [--runs 8] [COMMAND ...]

For each flow-run COMMAND (default: "" for Prefect's own, "python -m prefect.engine",
"prefect flow-run execute") it sets the default of bench-pool's `command` job variable,
measures 30 s idle, then starts N runs one after the other (each waited for) and prints
CPU-seconds per run of the worker container (flow-run processes included), the server
and PostgreSQL, raw and minus the idle rate, and the worker process's own CPU against
its children's (the flow-run processes), from /proc.
"""

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import throughput as tp  # noqa: E402

STACK = tp.STACKS["own"]
NAMES = {"worker": STACK["worker_prefix"] + "1", "server": STACK["server"], "postgres": STACK["postgres"]}


def cpu():
    return {k: tp.cgroup_cpu(v) for k, v in NAMES.items()}


def worker_process():
    """utime+stime of the `prefect worker start` process, and of its waited-for children."""
    rows = tp.docker("top", NAMES["worker"], "-eo", "pid,args").splitlines()
    pid = next(r.split()[0] for r in rows if "worker start" in r and "tini" not in r)
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {"self": (int(fields[11]) + int(fields[12])) / tick, "children": (int(fields[13]) + int(fields[14])) / tick}


async def probe(client, deployment_id, command, runs):
    pool = (await client.get("/work_pools/bench-pool")).raise_for_status().json()
    template = pool["base_job_template"]
    template["variables"]["properties"]["command"]["default"] = command or None
    (await client.patch("/work_pools/bench-pool", json={"base_job_template": template})).raise_for_status()
    await asyncio.sleep(12)  # the worker reads the pool at its next query
    c0, t0 = cpu(), time.monotonic()
    await asyncio.sleep(30)
    c1 = cpu()
    idle = {k: (c1[k] - c0[k]) / (time.monotonic() - t0) for k in c0}
    c0, p0, t0 = cpu(), worker_process(), time.monotonic()
    states = set()
    for i in range(runs):
        run = (await client.post(f"/deployments/{deployment_id}/create_flow_run",
                                 json={"parameters": {"i": i}})).raise_for_status().json()
        while True:
            run = (await client.get(f"/flow_runs/{run['id']}")).raise_for_status().json()
            if run["state_type"] in tp.FINAL:
                states.add(run["state_name"])
                break
            await asyncio.sleep(0.5)
    wall = time.monotonic() - t0
    c1, p1 = cpu(), worker_process()
    return {"command": command or "Prefect's own", "runs": runs, "states": sorted(states),
            "wall_s_per_run": round(wall / runs, 1),
            "cpu_s_per_run": {k: round((c1[k] - c0[k]) / runs, 2) for k in c0},
            "cpu_s_per_run_minus_idle": {k: round((c1[k] - c0[k] - idle[k] * wall) / runs, 2) for k in c0},
            "worker_process_per_run": {k: round((p1[k] - p0[k]) / runs, 2) for k in p0},
            "load": tp.load()}


async def main(args):
    with open(os.path.expanduser(STACK["auth_file"]), encoding="utf-8") as fh:
        auth = ("admin", fh.read().strip())
    async with httpx.AsyncClient(base_url=STACK["api_url"], auth=auth, timeout=60) as client:
        deployment_id = await tp.ensure_deployment(client)
        for command in args.commands or ["", "python -m prefect.engine", "prefect flow-run execute"]:
            print(json.dumps(await probe(client, deployment_id, command, args.runs)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("commands", nargs="*")
    asyncio.run(main(parser.parse_args()))
