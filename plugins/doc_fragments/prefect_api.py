# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):
    """Options shared by every module that talks to the Prefect REST API."""

    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - URL of the Prefect server's REST API, including the C(/api) suffix, for example
        C(http://127.0.0.1:4200/api).
      - If not set, the value of the E(PREFECT_API_URL) environment variable on the
        target host is used, as the Prefect CLI does.
    type: str
    required: true
  api_auth_string:
    description:
      - Credentials for a server protected with HTTP basic auth, as C(user:password).
        This is the client side of the server's E(PREFECT_SERVER_API_AUTH_STRING).
      - If not set, the value of the E(PREFECT_API_AUTH_STRING) environment variable on
        the target host is used, as the Prefect CLI does.
      - Never shown in output or logs.
    type: str
  validate_certs:
    description:
      - Verify the server's TLS certificate when O(api_url) is C(https://).
      - Only set to V(false) on a test machine; prefer O(ca_path).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the certificate authority that signed the server's certificate,
        used instead of the system trust store.
    type: path
  timeout:
    description:
      - Seconds to wait for one HTTP request.
    type: float
    default: 30.0
  retries:
    description:
      - How many times a request is retried after a connection error or an HTTP 429,
        500, 502, 503 or 504 answer (for example while the server is starting),
        with exponential backoff (1, 2, 4, ... seconds, at most 15 seconds between
        tries).
      - A request that could act twice (a POST that creates or starts something, a PATCH)
        is retried only when the server certainly did not process it (connection refused,
        DNS failure, HTTP 429 or 503); after a timeout, a reset or HTTP 500, 502 or 504 the
        module fails saying the request may have been applied.
      - V(0) disables retries.
    type: int
    default: 5
  retry_timeout:
    description:
      - Upper bound, in seconds, on the total time spent on one request including all
        retries. No retry starts once it would end after this bound.
    type: float
    default: 60.0
notes:
  - The modules talk to the server with Python's standard library only; the
    C(prefect) package is not needed on the target host.
  - The server must run Prefect 3.0.0 or later; older servers are refused with a
    message naming the version they report.
"""
