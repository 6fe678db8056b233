# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one client every selfhosted.prefect module uses to talk to a Prefect 3 server.

Standard library and ansible-core only (no ``requests``, no ``prefect``), so the
modules run on any target host. HTTP goes through one ``HTTPTransport`` per
client: one ``urllib.request`` opener (proxies from the environment as usual) and one
TLS context loaded once, not ``ansible.module_utils.urls.open_url``, which builds a TLS
context from every CA file of the host on each request and imports ``cryptography``:
about 0.1 s of every module run, for features (netrc, GSSAPI, client certificates) the
collection does not use. The S3 client of ``s3_sync.py`` sends its requests through an
``HTTPTransport`` too.

Interface (stable; other modules build on it)
---------------------------------------------
``prefect_api_argument_spec()``
    Returns a fresh dict with the shared options, to merge into a module's own
    ``argument_spec``: ``api_url`` (env ``PREFECT_API_URL``), ``api_auth_string``
    (env ``PREFECT_API_AUTH_STRING``, ``no_log``), ``validate_certs``, ``ca_path``,
    ``timeout``, ``retries``, ``retry_timeout``. Documented by the doc fragment
    ``selfhosted.prefect.prefect_api``.

``PrefectClient.from_module(module, check_version=True, minimum_version="3.0.0")``
    Builds a client from those options. With ``check_version`` it reads
    ``GET /admin/version`` and calls ``module.fail_json`` (with the same fields as
    ``PrefectAPIError.to_fail_kwargs()``) if the server is unreachable, refuses the
    credentials or is older than ``minimum_version``. The version read is kept in
    ``client.server_version``.

``PrefectClient(api_url, auth_string=None, validate_certs=True, ca_path=None,
timeout=30, retries=5, retry_timeout=60, ...)``
    ``api_url`` is the API root, e.g. ``http://127.0.0.1:4200/api``. Paths passed to
    the helpers are relative to it (``"/work_pools/"``, ``"work_pools/x"``).

``client.request(method, path, data=None, params=None, retry=True, idempotent=None)`` and
``client.get / post / patch / put / delete(path, data=None, params=None, idempotent=None)``
    Send JSON, return the parsed JSON answer (``None`` for an empty body, e.g. 204).
    Raise ``PrefectAPIError`` on any failure after bounded retries. ``idempotent``
    says whether the request may be sent twice (see Retries); ``None`` decides by
    method and path (``is_safe_to_repeat``).
``client.get_or_none(path, params=None)``
    Like ``get`` but returns ``None`` on HTTP 404.
``client.delete_if_exists(path)``
    ``DELETE``; returns ``True`` if something was deleted, ``False`` on 404.
``client.post_paginated(path, body=None, page_size=200, max_items=None)``
    Prefect ``/filter`` endpoints: repeats the POST with ``offset``/``limit`` and
    returns the concatenated list.
``client.get_server_version()`` -> str, ``client.check_server_version(minimum)``,
``client.is_ready()`` -> bool (``GET /ready``, no retries on 503),
``client.health()`` -> parsed ``GET /health``.

``PrefectAPIError(Exception)``
    Attributes ``method``, ``url`` (credentials stripped), ``status`` (HTTP status or
    ``None`` for connection errors), ``detail`` (Prefect's own ``detail`` /
    validation message), ``attempts``, ``not_repeated`` (``True`` when the request may
    have been applied and was deliberately not sent again). ``str(err)`` names method,
    URL, status and detail, never the credentials. ``err.to_fail_kwargs()`` gives
    ``dict(msg=..., status=..., url=..., method=..., detail=...)`` for
    ``module.fail_json(**...)``.

``version_tuple("3.9.1")`` -> ``(3, 9, 1)``; ``compare_versions(a, b)`` -> -1/0/1.

``HTTPTransport(validate_certs=True, ca_path=None, user_agent=USER_AGENT,
follow_redirects=True, opener=None)``
    The HTTP stack of the collection: one urllib opener and one TLS context (``ca_path``
    only, or the system's CAs; none for plain http), both made on first use.
    ``transport.open(method, url, body=None, headers=None, timeout=30.0)`` sends one
    request and returns an ``HTTPResponse`` (``status``, ``body`` bytes, ``headers``) for
    every HTTP status, 4xx and 5xx included; it raises ``TransportError`` when the TLS
    context cannot be made and ``URLError`` / ``OSError`` when nothing answers. No
    retries (``PrefectClient.request`` retries). Redirects are followed with the
    request's credentials (``Authorization``, ``Proxy-Authorization``, ``Cookie``,
    ``X-Registry-Auth``) only to the same origin (scheme, host, port; or from http to
    https on the same host and default ports); to another origin they are followed
    without those headers; from https to http (or to a scheme other than http(s)) they
    are refused (``RedirectRefused``, a ``TransportError`` naming the status and where
    it pointed; ``PrefectClient`` turns it into a ``PrefectAPIError``, not retried).
    ``follow_redirects=False`` returns a 3xx as it is. ``opener`` replaces urllib with a
    callable shaped like ``open_url`` (``opener(url, data=, headers=, method=, timeout=,
    validate_certs=, ca_path=, http_agent=, use_netrc=)``, raising ``HTTPError`` for
    4xx/5xx), for tests; ``PrefectClient(opener=...)`` passes it on.

``is_safe_to_repeat(method, url, idempotent=None)`` -> bool (see Retries);
``redirect_keeps_credentials(old_url, new_url)`` -> bool (see ``HTTPTransport``).

Retries: a request that is safe to repeat (GET, HEAD, PUT, DELETE, OPTIONS; a POST to a
read endpoint, whose path ends in ``/filter``, ``/count``, ``/paginate``, ``/history`` or
``/lateness``; any request sent with ``idempotent=True``, e.g. a create the server
de-duplicates or upserts) is retried after connection errors (refused, reset, timeout,
DNS) and HTTP 429/500/502/503/504. Any other request (a POST that creates or acts, a
PATCH; or one sent with ``idempotent=False``) is retried only when the server certainly
did not process it: connection refused or DNS failure (nothing was sent), HTTP 429 or
503. After a timeout, a reset or HTTP 500/502/504 it may have been applied, so it is
not repeated (a second flow run, a second schedule...): ``PrefectAPIError`` says so
(``not_repeated``). Retries happen up to ``retries`` times with exponential backoff
(1 s, 2 s, 4 s, ... capped at 15 s, or the server's ``Retry-After``), and never past
``retry_timeout`` seconds in total counted from the first attempt. TLS certificate
failures, refused redirects and other 4xx are not retried.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import time

from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit, urlunsplit
from urllib.request import HTTPRedirectHandler, HTTPSHandler, Request, build_opener

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.text.converters import to_native, to_text


MINIMUM_SERVER_VERSION = "3.0.0"
USER_AGENT = "ansible-selfhosted.prefect"
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
# Answers that say the server did not process the request (so even a create may be repeated).
NOT_PROCESSED_STATUSES = frozenset((429, 503))
# Methods whose repetition changes nothing more than the first request did.
SAFE_METHODS = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS"))
# POST endpoints of the Prefect API that only read (filters, counts, pages, histories).
READ_ENDPOINT_RE = re.compile(r"/(?:filter|count|paginate|history|lateness)/?$")
NOT_REPEATED = ("the server may have applied the request before the error, so it was not repeated"
                " (it is not safe to send twice); check the server's state before running it again")
DEFAULT_PAGE_SIZE = 200
# Request headers that carry credentials: never sent to another origin by a redirect.
CREDENTIAL_HEADERS = frozenset(("authorization", "proxy-authorization", "cookie", "x-registry-auth"))
DEFAULT_PORTS = {"http": 80, "https": 443}


def prefect_api_argument_spec():
    """Shared options of every module that talks to the Prefect API (a new dict each call)."""
    return dict(
        api_url=dict(
            type="str",
            required=True,
            fallback=(env_fallback, ["PREFECT_API_URL"]),
        ),
        api_auth_string=dict(
            type="str",
            no_log=True,
            fallback=(env_fallback, ["PREFECT_API_AUTH_STRING"]),
        ),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="float", default=30.0),
        retries=dict(type="int", default=5),
        retry_timeout=dict(type="float", default=60.0),
    )


def version_tuple(version):
    """Numeric (major, minor, patch) of a version string such as '3.9.1' or '3.10.0rc1+g1'."""
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", to_text(version or ""))
    if not match:
        raise ValueError("not a version: %r" % (version,))
    return tuple(int(part or 0) for part in match.groups())


def compare_versions(left, right):
    """-1, 0 or 1 as version `left` is older than, equal to or newer than `right`."""
    a, b = version_tuple(left), version_tuple(right)
    return (a > b) - (a < b)


def is_safe_to_repeat(method, url, idempotent=None):
    """Whether a request may be sent again after an error that leaves its fate unknown.

    ``idempotent`` (``True``/``False``) decides when given; otherwise the method does
    (GET, HEAD, PUT, DELETE, OPTIONS are), and a POST is only when its path is a read
    endpoint (``/filter``, ``/count``, ``/paginate``, ``/history``, ``/lateness``)."""
    if idempotent is not None:
        return bool(idempotent)
    method = (method or "").upper()
    if method in SAFE_METHODS:
        return True
    if method == "POST":
        try:
            path = urlsplit(url).path
        except ValueError:
            return False
        return bool(READ_ENDPOINT_RE.search(path))
    return False


def _nothing_sent(exc):
    """True for a connection error that proves the request never left: refused, or no address."""
    for error in (exc, getattr(exc, "reason", None)):
        if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
            return True
    return False


def _origin(url):
    """(scheme, host, port) of a URL, the port made explicit."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def redirect_keeps_credentials(old_url, new_url):
    """Whether a redirect from old_url to new_url may carry the request's credentials: same
    origin, or the same host moving from http on its default port to https on its default port."""
    old, new = _origin(old_url), _origin(new_url)
    if old == new:
        return True
    return old == ("http", new[1], 80) and new == ("https", old[1], 443)


def sanitize_url(url):
    """`url` without user:password@ (so it can be shown in messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = "[%s]" % netloc
    if parts.port:
        netloc = "%s:%d" % (netloc, parts.port)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def extract_detail(body):
    """Prefect's own error message out of an error response body (text or parsed JSON).

    FastAPI errors carry ``{"detail": "..."}``; Prefect's validation errors (422)
    carry ``exception_message`` and ``exception_detail`` (a list of pydantic errors)
    plus ``request_body``, which is never echoed because it may hold secrets.
    """
    if body is None:
        return None
    parsed = body
    if isinstance(body, (bytes, str)):
        text = to_text(body, errors="surrogate_or_replace").strip()
        if not text:
            return None
        try:
            parsed = json.loads(text)
        except ValueError:
            return text[:500]
    if isinstance(parsed, dict):
        detail = parsed.get("detail")
        if detail is None and parsed.get("exception_detail") is not None:
            detail = parsed.get("exception_detail")
        if isinstance(detail, list):
            messages = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(to_text(p) for p in item.get("loc", []) or [])
                    msg = to_text(item.get("msg", ""))
                    messages.append("%s: %s" % (loc, msg) if loc else msg)
                else:
                    messages.append(to_text(item))
            detail = "; ".join(messages)
        if detail is None:
            detail = parsed.get("exception_message") or parsed.get("message")
        if detail is None:
            return None
        if isinstance(detail, (dict, list)):
            return json.dumps(detail, sort_keys=True)[:500]
        return to_text(detail)
    if isinstance(parsed, str):
        return parsed[:500]
    return None


class PrefectAPIError(Exception):
    """A failed Prefect API call: names method, URL, HTTP status and Prefect's detail."""

    def __init__(self, message=None, method=None, url=None, status=None, detail=None, attempts=1, reason=None,
                 not_repeated=False):
        self.method = method
        self.url = sanitize_url(url) if url else url
        self.status = status
        self.detail = detail
        self.attempts = attempts
        self.reason = reason
        self.not_repeated = not_repeated
        if message is None:
            message = self._format()
        self.message = message
        super(PrefectAPIError, self).__init__(message)

    def _format(self):
        where = "%s %s" % (self.method or "?", self.url or "?")
        if self.status is not None:
            msg = "Prefect API request %s failed with HTTP %s" % (where, self.status)
            if self.detail:
                msg += ": %s" % self.detail
            if self.status == 401:
                msg += (" (the server refused the credentials: check api_auth_string /"
                        " PREFECT_API_AUTH_STRING against the server's PREFECT_SERVER_API_AUTH_STRING)")
        else:
            msg = "Could not reach the Prefect API: %s failed" % where
            if self.reason:
                msg += ": %s" % self.reason
        if self.attempts and self.attempts > 1:
            msg += " (after %d attempts)" % self.attempts
        if self.not_repeated:
            msg += "; %s" % NOT_REPEATED
        return msg

    def __str__(self):
        return self.message

    def to_fail_kwargs(self):
        """Keyword arguments for ``module.fail_json``."""
        return dict(msg=self.message, status=self.status, url=self.url, method=self.method, detail=self.detail)


class TransportError(Exception):
    """The HTTP stack cannot be set up (the CA certificates cannot be loaded)."""


class HTTPResponse(object):
    """One HTTP answer, read once."""

    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers


class RedirectRefused(TransportError):
    """A redirect that is not followed (from https to http): its status and where it pointed."""

    def __init__(self, status, location, why):
        self.status = status
        self.location = sanitize_url(location)
        self.why = why
        super(RedirectRefused, self).__init__("redirect (HTTP %s) to %s not followed: %s"
                                              % (status, self.location, why))


class _NoRedirect(HTTPRedirectHandler):
    """A 3xx is an answer, not a place to go (a signed request is only valid for its URL)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _OriginRedirect(HTTPRedirectHandler):
    """urllib's redirects, but the credentials never leave their origin.

    urllib's own handler copies every header of the request (``Authorization`` included)
    to wherever the ``Location`` points, any host. Here a redirect to another origin is
    followed without the credential headers, and one from https to http is refused."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old_url = req.full_url
        old_scheme, new_scheme = _origin(old_url)[0], _origin(newurl)[0]
        why = None
        if old_scheme == "https" and new_scheme != "https":
            why = ("it leaves https for %s, which would send the request and its credentials unencrypted"
                   % (new_scheme or "no scheme"))
        elif new_scheme not in ("http", "https"):
            why = "it leaves http for %s" % (new_scheme or "no scheme")
        if why:
            fp.close()
            raise RedirectRefused(code, newurl, why)
        new_req = HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, headers, newurl)
        if new_req is not None and not redirect_keeps_credentials(old_url, newurl):
            for name in list(new_req.headers):
                if name.lower() in CREDENTIAL_HEADERS:
                    del new_req.headers[name]
            for name in list(new_req.unredirected_hdrs):
                if name.lower() in CREDENTIAL_HEADERS:
                    del new_req.unredirected_hdrs[name]
        return new_req


class HTTPTransport(object):
    """One urllib opener and one TLS context for every request of one client.

    See the module docstring for the interface."""

    def __init__(self, validate_certs=True, ca_path=None, user_agent=USER_AGENT, follow_redirects=True,
                 opener=None):
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.user_agent = user_agent
        self.follow_redirects = follow_redirects
        self._opener = opener
        self._ssl_context = None
        self._url_opener = None

    def _context(self):
        """The TLS context, made on first use: ca_path only, or the system's CAs."""
        if self._ssl_context is None:
            try:
                context = ssl.create_default_context(cafile=self.ca_path)
            except (ssl.SSLError, OSError) as exc:
                raise TransportError("cannot load the CA certificates%s: %s" % (
                    " from ca_path %s" % self.ca_path if self.ca_path else "", to_native(exc)))
            if not self.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl_context = context
        return self._ssl_context

    def _urllib_open(self, url, data=None, headers=None, method=None, timeout=None, **_kwargs):
        """One request through the transport's opener (urllib: proxies as usual)."""
        if self._url_opener is None:
            handlers = [HTTPSHandler(context=self._context())] if url.startswith("https:") else []
            handlers.append(_OriginRedirect() if self.follow_redirects else _NoRedirect())
            self._url_opener = build_opener(*handlers)
        return self._url_opener.open(Request(url, data=data, headers=headers, method=method), timeout=timeout)

    def open(self, method, url, body=None, headers=None, timeout=30.0):
        """One HTTP exchange. Returns HTTPResponse for every HTTP status; raises on no answer."""
        headers = dict(headers or {})
        headers.setdefault("User-Agent", self.user_agent)
        opener = self._opener or self._urllib_open
        try:
            resp = opener(url, data=body, headers=headers, method=method, timeout=timeout,
                          validate_certs=self.validate_certs, ca_path=self.ca_path, http_agent=self.user_agent,
                          use_netrc=False)
        except HTTPError as exc:
            try:
                content = exc.read()
            except Exception:  # pylint: disable=broad-except
                content = b""
            return HTTPResponse(exc.code, content, getattr(exc, "headers", None) or {})
        status = getattr(resp, "status", None) or resp.getcode()
        return HTTPResponse(status, resp.read(), getattr(resp, "headers", None) or {})


class PrefectClient(object):
    """Talks to one Prefect 3 server's REST API. See the module docstring for the interface."""

    def __init__(self, api_url, auth_string=None, validate_certs=True, ca_path=None, timeout=30.0,
                 retries=5, retry_timeout=60.0, backoff_base=1.0, backoff_max=15.0,
                 opener=None, sleep=None, clock=None, user_agent=USER_AGENT):
        if not api_url:
            raise PrefectAPIError(
                "api_url is required (or set PREFECT_API_URL), e.g. http://127.0.0.1:4200/api")
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PrefectAPIError(
                "api_url must be an http(s) URL such as http://127.0.0.1:4200/api, got %s"
                % sanitize_url(api_url))
        self.api_url = api_url.rstrip("/")
        self._auth_header = None
        if auth_string:
            token = base64.b64encode(to_text(auth_string).encode("utf-8"))
            self._auth_header = "Basic " + to_native(token)
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = float(timeout) if timeout else 30.0
        self.retries = max(0, int(retries or 0))
        self.retry_timeout = float(retry_timeout) if retry_timeout is not None else 60.0
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.transport = HTTPTransport(validate_certs=validate_certs, ca_path=ca_path, user_agent=user_agent,
                                       opener=opener)
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self.user_agent = user_agent
        self.server_version = None

    # -- construction from a module ------------------------------------------------
    @classmethod
    def from_module(cls, module, check_version=True, minimum_version=MINIMUM_SERVER_VERSION):
        """A client from the shared options; fails the module cleanly on any problem."""
        p = module.params
        try:
            client = cls(
                api_url=p.get("api_url"),
                auth_string=p.get("api_auth_string"),
                validate_certs=p.get("validate_certs", True),
                ca_path=p.get("ca_path"),
                timeout=p.get("timeout") or 30.0,
                retries=p.get("retries") if p.get("retries") is not None else 5,
                retry_timeout=p.get("retry_timeout") if p.get("retry_timeout") is not None else 60.0,
            )
            if check_version:
                client.check_server_version(minimum_version)
        except PrefectAPIError as exc:
            module.fail_json(**exc.to_fail_kwargs())
        return client

    # -- low level --------------------------------------------------------------
    def url_for(self, path, params=None):
        """Absolute URL of an API path (relative to api_url)."""
        if path.startswith("http://") or path.startswith("https://"):
            url = path
        else:
            url = "%s/%s" % (self.api_url, path.lstrip("/"))
        if params:
            query = urlencode([(k, self._param(v)) for k, v in sorted(params.items()) if v is not None])
            if query:
                url += ("&" if "?" in url else "?") + query
        return url

    @staticmethod
    def _param(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    def _headers(self, has_body):
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if has_body:
            headers["Content-Type"] = "application/json"
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        return headers

    def _open_once(self, method, url, payload, timeout):
        """One HTTP exchange. Returns HTTPResponse for every HTTP status; raises on no answer."""
        try:
            return self.transport.open(method, url, payload, self._headers(payload is not None), timeout)
        except RedirectRefused as exc:
            raise PrefectAPIError(method=method, url=url, status=exc.status,
                                  detail="redirected to %s, not followed: %s" % (exc.location, exc.why))
        except TransportError as exc:
            raise PrefectAPIError(url=url, reason=to_native(exc))

    def _backoff(self, attempt, retry_after=None):
        delay = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        if retry_after is not None:
            delay = min(self.backoff_max, max(0.0, retry_after))
        return delay

    @staticmethod
    def _retry_after(headers):
        try:
            value = headers.get("Retry-After")
        except AttributeError:
            return None
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    def request(self, method, path, data=None, params=None, retry=True, idempotent=None):
        """Send one API request (JSON in, JSON out) with bounded retries; see module docstring.

        ``idempotent``: ``True`` when sending the request twice does no more than once (a
        create the server de-duplicates), ``False`` when it must not be repeated after an
        error that leaves its fate unknown, ``None`` to decide by method and path."""
        method = method.upper()
        url = self.url_for(path, params)
        payload = None
        if data is not None:
            payload = json.dumps(data).encode("utf-8")
        safe = is_safe_to_repeat(method, url, idempotent)
        max_retries = self.retries if retry else 0
        start = self._clock()
        deadline = start + self.retry_timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - self._clock()
            timeout = max(1.0, min(self.timeout, remaining)) if retry else self.timeout
            response = None
            reason = None
            try:
                response = self._open_once(method, url, payload, timeout)
            except (URLError, socket.timeout, socket.error, OSError) as exc:
                reason = self._describe_connection_error(exc)
                if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
                    raise PrefectAPIError(method=method, url=url, attempts=attempt,
                                          reason="TLS certificate validation failed: %s" % reason)
                if not safe and not _nothing_sent(exc):
                    raise PrefectAPIError(method=method, url=url, attempts=attempt, reason=reason, not_repeated=True)

            if response is not None and response.status not in RETRY_STATUSES:
                return self._handle(method, url, response, attempt)
            if response is not None and not safe and response.status not in NOT_PROCESSED_STATUSES:
                return self._handle(method, url, response, attempt, not_repeated=True)

            retry_after = self._retry_after(response.headers) if response is not None else None
            delay = self._backoff(attempt - 1, retry_after)
            elapsed_after_sleep = self._clock() + delay
            if attempt > max_retries or elapsed_after_sleep >= deadline:
                if response is not None:
                    return self._handle(method, url, response, attempt)
                raise PrefectAPIError(method=method, url=url, attempts=attempt, reason=reason)
            self._sleep(delay)

    @staticmethod
    def _describe_connection_error(exc):
        reason = getattr(exc, "reason", None)
        if reason is not None and not isinstance(reason, str):
            reason = to_native(reason)
        text = reason or to_native(exc) or exc.__class__.__name__
        if isinstance(exc, socket.timeout) or "timed out" in text:
            return "timed out (%s)" % text
        return text

    @staticmethod
    def _handle(method, url, response, attempts, not_repeated=False):
        if 200 <= response.status < 300:
            if not response.body:
                return None
            text = to_text(response.body, errors="surrogate_or_replace")
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except ValueError:
                raise PrefectAPIError(method=method, url=url, status=response.status, attempts=attempts,
                                      detail="answer is not JSON: %s" % text[:200])
        raise PrefectAPIError(method=method, url=url, status=response.status,
                              detail=extract_detail(response.body), attempts=attempts, not_repeated=not_repeated)

    # -- helpers ---------------------------------------------------------------
    def get(self, path, params=None, idempotent=None):
        return self.request("GET", path, params=params, idempotent=idempotent)

    def post(self, path, data=None, params=None, idempotent=None):
        return self.request("POST", path, data=data if data is not None else {}, params=params, idempotent=idempotent)

    def patch(self, path, data=None, params=None, idempotent=None):
        return self.request("PATCH", path, data=data if data is not None else {}, params=params,
                            idempotent=idempotent)

    def put(self, path, data=None, params=None, idempotent=None):
        return self.request("PUT", path, data=data if data is not None else {}, params=params, idempotent=idempotent)

    def delete(self, path, params=None, idempotent=None):
        return self.request("DELETE", path, params=params, idempotent=idempotent)

    def get_or_none(self, path, params=None):
        """GET, or None when the server answers 404."""
        try:
            return self.get(path, params=params)
        except PrefectAPIError as exc:
            if exc.status == 404:
                return None
            raise

    def delete_if_exists(self, path, params=None):
        """DELETE; True if deleted, False if it was already gone (404)."""
        try:
            self.delete(path, params=params)
        except PrefectAPIError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def post_paginated(self, path, body=None, page_size=DEFAULT_PAGE_SIZE, max_items=None):
        """All items of a Prefect /filter endpoint (POST with offset/limit)."""
        items = []
        offset = 0
        while True:
            limit = page_size
            if max_items is not None:
                limit = min(page_size, max_items - len(items))
                if limit <= 0:
                    break
            page_body = dict(body or {})
            page_body["offset"] = offset
            page_body["limit"] = limit
            page = self.post(path, data=page_body, idempotent=True) or []
            items.extend(page)
            if len(page) < limit:
                break
            offset += len(page)
        return items

    # -- server level ----------------------------------------------------------
    def get_server_version(self):
        """The server's Prefect version (GET /admin/version), cached on the client."""
        version = self.get("/admin/version")
        self.server_version = to_text(version) if version is not None else None
        return self.server_version

    def check_server_version(self, minimum=MINIMUM_SERVER_VERSION):
        """Raise PrefectAPIError unless the server is at least `minimum`. Returns the version."""
        version = self.get_server_version()
        try:
            too_old = compare_versions(version, minimum) < 0
        except ValueError:
            raise PrefectAPIError(
                "The Prefect server at %s reported an unreadable version %r; this collection needs"
                " Prefect >= %s" % (sanitize_url(self.api_url), version, minimum),
                method="GET", url=self.url_for("/admin/version"))
        if too_old:
            raise PrefectAPIError(
                "The Prefect server at %s runs Prefect %s; this collection needs Prefect >= %s"
                % (sanitize_url(self.api_url), version, minimum),
                method="GET", url=self.url_for("/admin/version"), detail="server version %s" % version)
        return version

    def is_ready(self):
        """True if GET /ready answers 2xx (the database is reachable). No retries."""
        try:
            self.request("GET", "/ready", retry=False)
        except PrefectAPIError as exc:
            if exc.status is not None and exc.status >= 500:
                return False
            raise
        return True

    def health(self):
        """Parsed GET /health."""
        return self.get("/health")
