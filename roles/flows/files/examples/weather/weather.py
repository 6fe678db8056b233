"""The guide's weather flow, offline: a computed "forecast", no public API call.

The same file serves each code source of the examples: the shared flows directory,
an S3 folder, and an image built from this directory.
"""

import os
import platform

from prefect import flow, get_run_logger, task

CODE_VERSION = "1"


@task
def forecast(city: str, days: int) -> str:
    """A made-up forecast, the same for the same input."""
    score = sum(ord(c) for c in city) % 30
    return "%s: %d degrees for %d days" % (city, score, days)


@flow
def weather(city: str = "Paris", days: int = 3) -> str:
    """Log the weather of a city.

    Args:
        city: the city
        days: how many days
    """
    report = forecast(city, days)
    where = os.environ.get("PREFECT_WORKER_HOST") or platform.node()
    get_run_logger().info("weather code %s on %s: %s", CODE_VERSION, where, report)
    return report


if __name__ == "__main__":
    weather()
