# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: many flow runs from S3 storage at once, against a running Prefect 3 server.

Usually started by the wrapper ``benchmarks/s3_burst``; by hand (one line):

    python3 benchmarks/s3_burst.py --api-url https://172.31.217.10:4200/api --ca-file CA --auth-password-file FILE --runs 100

It resolves ``--deployment`` (flow_name/deployment_name), creates ``--runs`` flow runs
from 10 threads, then polls ``/flow_runs/filter`` until every run is final or
``--timeout`` passes. The markdown report (counts, wall time, runs/min, scheduled-to-
completed latency p50/p95/max, average total_run_time) goes to stdout and ``--out``;
progress to stderr. Exit code 0: all runs Completed, 1: otherwise, 2: usage or
connection error. Standard library only; the password is never printed.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import math
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
CREATE_THREADS = 10
CHUNK = 200
PROGRESS_EVERY = 15.0
POLL_RETRIES = 5


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Api:
    def __init__(self, api_url, user, password, ca_file=None):
        self.api_url = api_url.rstrip("/")
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.auth = None
        if password is not None:
            self.auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    def request(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.auth:
            req.add_header("Authorization", self.auth)
        with urllib.request.urlopen(req, timeout=timeout, context=self.context) as resp:  # nosec - URL given by the operator
            return json.loads(resp.read() or b"null")


def describe(exc):
    """One line for an HTTP or connection error: status and the first 300 chars of the body."""
    if isinstance(exc, urllib.error.HTTPError):
        body = exc.read().decode("utf-8", "replace") if exc.fp else ""
        return "HTTP %s %s: %s" % (exc.code, exc.reason, " ".join(body[:300].split()))
    if isinstance(exc, urllib.error.URLError):
        return "connection error: %s" % (exc.reason,)
    return "%s: %s" % (type(exc).__name__, exc)


def parse_ts(value):
    """ISO 8601 timestamp from the API (with timezone) to an aware datetime, None if empty."""
    if not value:
        return None
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(value)


def percentile(values, pct):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def create_runs(api, deployment_id, count):
    def one(_index):
        try:
            return api.request("POST", "/deployments/%s/create_flow_run" % deployment_id, {})["id"], None
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
            return None, describe(exc)

    with ThreadPoolExecutor(max_workers=CREATE_THREADS) as pool:
        results = list(pool.map(one, range(count)))
    return [run_id for run_id, _err in results if run_id], [err for _run_id, err in results if err]


def poll(api, ids, timeout, every):
    runs = {}
    started = last_progress = time.monotonic()
    failures = 0
    while True:
        try:
            for i in range(0, len(ids), CHUNK):
                body = {"flow_runs": {"id": {"any_": ids[i:i + CHUNK]}}, "limit": CHUNK}
                for run in api.request("POST", "/flow_runs/filter", body):
                    runs[run["id"]] = run
            failures = 0
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures += 1
            log("poll failed (%d/%d): %s" % (failures, POLL_RETRIES, describe(exc)))
            if failures >= POLL_RETRIES:
                raise
        states = [runs.get(run_id, {}).get("state_type") or "UNKNOWN" for run_id in ids]
        done = all(state in FINAL for state in states)
        elapsed = time.monotonic() - started
        if done or elapsed >= timeout or time.monotonic() - last_progress >= PROGRESS_EVERY:
            counts = ", ".join("%s=%d" % (s, states.count(s)) for s in sorted(set(states)))
            log("%6.0fs  %s" % (elapsed, counts or "no runs"))
            last_progress = time.monotonic()
        if done or elapsed >= timeout:
            return [runs.get(run_id, {"id": run_id}) for run_id in ids]
        time.sleep(every)


def report(args, runs, create_errors, first_create):
    total = args.runs
    by_state = {}
    for run in runs:
        by_state.setdefault(run.get("state_type") or "UNKNOWN", []).append(run)
    completed = by_state.get("COMPLETED", [])
    failed = {s: len(by_state.get(s, [])) for s in ("FAILED", "CRASHED", "CANCELLED")}
    unfinished = sum(len(v) for s, v in by_state.items() if s not in FINAL)
    not_created = len(create_errors)
    ends = [parse_ts(r.get("end_time")) for r in runs if r.get("state_type") in FINAL]
    ends = [e for e in ends if e]
    last_end = max(ends) if ends else datetime.datetime.now(datetime.timezone.utc)
    wall = max((last_end - first_create).total_seconds(), 0.001)
    latencies = []
    for run in completed:
        end, expected = parse_ts(run.get("end_time")), parse_ts(run.get("expected_start_time"))
        if end and expected:
            latencies.append((end - expected).total_seconds())
    run_time = sum(float(r.get("total_run_time") or 0.0) for r in runs)
    met = len(completed) == total
    lines = [
        "# S3 burst benchmark",
        "",
        "- date (UTC): %s" % first_create.strftime("%Y-%m-%d %H:%M:%S"),
        "- label: %s" % (args.label or "-"),
        "- API host: %s" % (urllib.parse.urlsplit(args.api_url).netloc or args.api_url),
        "- deployment: %s" % args.deployment,
        "- flow runs requested: %d" % total,
        "",
        "| measure | value |",
        "|---|---|",
        "| completed | %d |" % len(completed),
        "| failed (total) | %d |" % (sum(failed.values()) + unfinished + not_created),
        "| - FAILED / CRASHED / CANCELLED | %d / %d / %d |" % tuple(failed.values()),
        "| - never finished (timeout %ds) | %d |" % (args.timeout, unfinished),
        "| - not created | %d |" % not_created,
        "| wall time, first creation to last end (s) | %.1f |" % wall,
        "| runs/min (completed) | %.1f |" % (len(completed) / (wall / 60.0)),
    ]
    if latencies:
        lines += [
            "| scheduled-to-completed p50 (s) | %.1f |" % percentile(latencies, 50),
            "| scheduled-to-completed p95 (s) | %.1f |" % percentile(latencies, 95),
            "| scheduled-to-completed max (s) | %.1f |" % max(latencies),
        ]
    lines.append("| total_run_time sum / average over N (s) | %.1f / %.2f |" % (run_time, run_time / total))
    if create_errors:
        lines += ["", "First creation error (%d in all): `%s`" % (not_created, create_errors[0])]
    lines += ["", "target %d/%d Completed: %s" % (total, total, "met" if met else "not met")]
    return "\n".join(lines) + "\n", met


def main(argv=None):
    parser = argparse.ArgumentParser(description="Many flow runs from S3 storage at once.")
    parser.add_argument("--api-url", required=True, help="e.g. https://172.31.217.10:4200/api")
    parser.add_argument("--ca-file", help="CA of the server's TLS front door (server_tls)")
    parser.add_argument("--auth-user", default="admin")
    parser.add_argument("--auth-password-file", help="file holding the basic-auth password")
    parser.add_argument("--deployment", default="s3_demo/s3-demo", help="flow_name/deployment_name")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds")
    parser.add_argument("--poll", type=float, default=3.0, help="seconds between polls")
    parser.add_argument("--out", help="also write the markdown report to this file")
    parser.add_argument("--label", help="free text for the report header")
    args = parser.parse_args(argv)
    flow_name, sep, deployment_name = args.deployment.partition("/")
    if not (sep and flow_name and deployment_name) or args.runs < 1 or args.poll <= 0:
        parser.error("--deployment must be flow_name/deployment_name, --runs >= 1, --poll > 0")
    password = None
    if args.auth_password_file:
        try:
            password = Path(args.auth_password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            parser.error("cannot read --auth-password-file: %s" % exc.strerror)
    try:
        api = Api(args.api_url, args.auth_user, password, args.ca_file)
        path = "/deployments/name/%s/%s" % (urllib.parse.quote(flow_name, safe=""),
                                            urllib.parse.quote(deployment_name, safe=""))
        deployment_id = api.request("GET", path)["id"]
        log("deployment %s = %s; creating %d flow runs" % (args.deployment, deployment_id, args.runs))
        first_create = datetime.datetime.now(datetime.timezone.utc)
        ids, errors = create_runs(api, deployment_id, args.runs)
        log("created %d flow runs in %.1fs, %d errors" % (
            len(ids), (datetime.datetime.now(datetime.timezone.utc) - first_create).total_seconds(), len(errors)))
        runs = poll(api, ids, args.timeout, args.poll) if ids else []
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        print("s3_burst: %s (%s)" % (describe(exc), args.api_url), file=sys.stderr)
        return 2
    text, met = report(args, runs, errors, first_create)
    sys.stdout.write(text)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            print("s3_burst: cannot write --out: %s" % exc, file=sys.stderr)
            return 2
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
