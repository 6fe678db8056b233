"""A plain function: registering it must be refused."""


def weather(city: str = "Paris"):
    return city
