# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The small flow every benchmark deployment registers (copied to a temporary directory)."""

from __future__ import annotations

from prefect import flow


@flow(name="bench-flow", log_prints=True)
def bench(city: str = "Paris", days: int = 3) -> str:
    """Print a made-up forecast.

    Args:
        city: the city
        days: how many days
    """
    report = "%s: %d degrees for %d days" % (city, sum(ord(c) for c in city) % 30, days)
    print(report)
    return report
