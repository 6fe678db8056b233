"""A flow that runs long enough to be killed while it runs (molecule/worker's crash test)."""
import time

from prefect import flow


@flow(log_prints=True)
def sleeper(seconds: int = 900):
    print("sleeping %d s" % seconds)
    time.sleep(seconds)
    return seconds
