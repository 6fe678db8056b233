"""A flow whose code lives in the shared directory (molecule shared_flows scenario).

CODE_VERSION is what the scenario edits on the exporting host; each run logs it with
the machine it ran on.
"""

import os

from prefect import flow

CODE_VERSION = "v1"


@flow(log_prints=True)
def hello() -> str:
    """Say which code ran where."""
    line = "shared code %s on %s" % (CODE_VERSION, os.environ.get("MOLECULE_MACHINE", "unknown"))
    print(line)
    return line
