"""CPU-seconds a container has used, read from its cgroup (shared by the benchmarks)."""
import os


def _cpu_files(cid):
    return ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9, None),
            (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6, "usage_usec"),
            (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e6, "usage_usec"))


def container_has_child_cgroup(cid, child):
    """Whether the cgroup (CPU) of container `cid` has a child cgroup `child`."""
    return any(os.path.isdir(os.path.join(os.path.dirname(files[0]), child)) for files in _cpu_files(cid))


def container_cpu_seconds(cid):
    """CPU-seconds container `cid` (full id) used so far, None when no cgroup of it is found.

    cgroup v1 (cpuacct.usage, ns), v2 under systemd (docker-<id>.scope) or cgroupfs (docker/<id>).
    """
    return _first_cpu_seconds(_cpu_files(cid))


def docker_cgroup_cpu_seconds():
    """CPU-seconds every container of this engine used so far, those already removed included
    (the parent cgroup of cgroupfs: v1 cpuacct/docker, v2 docker); None under systemd (its
    system.slice holds other services too)."""
    return _first_cpu_seconds((("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage", 1e9, None),
                               ("/sys/fs/cgroup/docker/cpu.stat", 1e6, "usage_usec")))


def _first_cpu_seconds(candidates):
    """CPU-seconds from the first (path, scale, key) whose file exists: the whole file is the
    count (key None), or the count is the line `key <n>` of it. None when no file exists."""
    for path, scale, key in candidates:
        if os.path.exists(path):
            with open(path, encoding="ascii") as fh:
                text = fh.read()
            if key:
                text = dict(line.split() for line in text.splitlines())[key]
            return int(text) / scale
    return None
