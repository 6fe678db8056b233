"""The guide's weather flow, offline: no network, a computed "forecast"."""

from prefect import flow, task


@task
def forecast(city: str, days: int) -> str:
    """A made-up forecast, the same for the same input."""
    score = sum(ord(c) for c in city) % 30
    return "%s: %d degrees for %d days" % (city, score, days)


@flow(log_prints=True)
def weather(city: str = "Paris", days: int = 3) -> str:
    """Print the weather of a city.

    Args:
        city: the city
        days: how many days
    """
    report = forecast(city, days)
    print(report)
    return report
