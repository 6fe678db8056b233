"""CPU-seconds a container has used, read from its cgroup (shared by the benchmarks)."""
import os


def container_cpu_seconds(cid):
    """CPU-seconds container `cid` (full id) used so far, None when no cgroup of it is found.

    cgroup v1 (cpuacct.usage, ns), v2 under systemd (docker-<id>.scope) or cgroupfs (docker/<id>).
    """
    for path, scale, key in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9, None),
                             (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6, "usage_usec"),
                             (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e6, "usage_usec")):
        if os.path.exists(path):
            with open(path, encoding="ascii") as fh:
                text = fh.read()
            if key:
                text = dict(line.split() for line in text.splitlines())[key]
            return int(text) / scale
    return None
