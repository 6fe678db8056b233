# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`python -m prefect.engine` with counters (run inside a container of the Prefect image by
engine_probe.py, not on its own).

Runs the flow run named by PREFECT__FLOW_RUN_ID as `python -m prefect.engine` does, and
prints to stderr one line `PROBE {json}` at exit: the HTTP requests the process made to
the API (method and path, ids replaced by {id}), its websocket connections, the TLS
contexts it built (with or without a CA file) and its own CPU-seconds (threads included).
PROBE_GC=freeze: import Prefect with the garbage collector off, then gc.freeze() before
the run (a candidate, measured against the plain engine).
"""

import atexit
import collections
import json
import os
import re
import resource
import runpy
import ssl
import sys

COUNTS = collections.Counter()
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_create_default_context = ssl.create_default_context


def _counted_context(*args, **kwargs):
    COUNTS["tls context, " + ("CA file" if args or kwargs.get("cafile") else "default paths")] += 1
    return _create_default_context(*args, **kwargs)


def _count_request(prefix, request):
    COUNTS[f"{prefix}{request.method} {ID.sub('{id}', request.url.path)}"] += 1


def _patch():
    ssl.create_default_context = _counted_context
    import httpx  # pylint: disable=import-outside-toplevel
    import websockets.asyncio.client as ws_client  # pylint: disable=import-outside-toplevel

    async_send, sync_send, ws_init = httpx.AsyncClient.send, httpx.Client.send, ws_client.connect.__init__

    async def counted_async_send(self, request, *args, **kwargs):
        _count_request("", request)
        return await async_send(self, request, *args, **kwargs)

    def counted_sync_send(self, request, *args, **kwargs):
        _count_request("sync ", request)
        return sync_send(self, request, *args, **kwargs)

    def counted_ws_init(self, uri, *args, **kwargs):
        COUNTS["websocket " + uri.split("/api", 1)[-1]] += 1
        ws_init(self, uri, *args, **kwargs)

    httpx.AsyncClient.send, httpx.Client.send = counted_async_send, counted_sync_send
    ws_client.connect.__init__ = counted_ws_init


def _report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write("PROBE " + json.dumps({"counts": dict(COUNTS),
                                            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)}) + "\n")


def main():
    _patch()
    atexit.register(_report)
    if os.environ.get("PROBE_GC") == "freeze":
        import gc  # pylint: disable=import-outside-toplevel
        gc.disable()
        import prefect.flow_engine  # noqa: F401 pylint: disable=import-outside-toplevel,unused-import
        gc.enable()
        gc.freeze()
    sys.argv = ["prefect.engine"]
    runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
