"""A flow that always fails, to check that failures are reported."""

from prefect import flow


@flow(name="always-fails")
def always_fails(reason: str = "on purpose"):
    raise RuntimeError("this flow failed %s" % reason)
