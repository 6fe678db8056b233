#!/usr/bin/env bash
# Runs a command (an ansible-playbook) in its own process group, writing its output to
# LOG, and kills the whole group with SIGKILL (ansible-playbook, its forked workers and
# their ssh clients at once, as a controller that dies would) as soon as MARKER shows
# up in that output. Used by verify.yml to interrupt a converge at a known task.
# Usage: interrupt_at.sh MARKER LOG TIMEOUT_SECONDS -- COMMAND [ARG...]
# Exit 0: killed at the marker; 3: the command ended before it; 4: no marker in time.
set -euo pipefail

marker=$1 log=$2 limit=$3
shift 3
[ "${1:-}" = "--" ] && shift

# Not a process group leader (no job control here): setsid makes the command one,
# so its pid is the group's id.
setsid "$@" >"$log" 2>&1 &
pid=$!
start=$SECONDS

while [ $((SECONDS - start)) -lt "$limit" ]; do
  if grep -qF -- "$marker" "$log"; then
    kill -KILL -- "-$pid"
    rc=0
    wait "$pid" || rc=$?
    echo "killed at the marker after $((SECONDS - start)) s (exit status $rc)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    rc=0
    wait "$pid" || rc=$?
    echo "the command ended (exit status $rc) before the marker"
    exit 3
  fi
  sleep 0.2
done
kill -KILL -- "-$pid" || true
echo "no marker within $limit s"
exit 4
