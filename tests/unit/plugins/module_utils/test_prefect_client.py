# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PrefectClient with a fake opener and a fake clock: requests, errors, retries and their bounds."""

from __future__ import annotations

import base64
import http.server
import io
import json
import socket
import threading
from urllib.error import HTTPError, URLError
from urllib.parse import quote, unquote

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils import prefect_client as pc
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    PrefectAPIError,
    PrefectClient,
)

API = "http://127.0.0.1:4200/api"
AUTH = "admin:s3cr3t-PASS"


class FakeResponse(object):
    def __init__(self, status, body=b"", headers=None):
        self.status = status
        self._body = body
        self.headers = headers or {}

    def read(self):
        return self._body

    def getcode(self):
        return self.status


class FakeClock(object):
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeOpener(object):
    """Answers each call with the next scripted outcome: (status, body[, headers]) or an exception."""

    def __init__(self, clock, outcomes, request_cost=0.0):
        self.clock = clock
        self.outcomes = list(outcomes)
        self.calls = []
        self.request_cost = request_cost

    def __call__(self, url, data=None, headers=None, method=None, timeout=None, **kwargs):
        self.calls.append(dict(url=url, data=data, headers=headers, method=method, timeout=timeout, kwargs=kwargs))
        self.clock.now += self.request_cost
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        status, body = outcome[0], outcome[1]
        headers_out = outcome[2] if len(outcome) > 2 else {}
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        if status >= 400:
            raise HTTPError(url, status, "error", headers_out, io.BytesIO(body))
        return FakeResponse(status, body, headers_out)


def make(outcomes, request_cost=0.0, **kwargs):
    clock = FakeClock()
    opener = FakeOpener(clock, outcomes, request_cost)
    options = dict(auth_string=AUTH, opener=opener, sleep=clock.sleep, clock=clock.clock)
    options.update(kwargs)
    return PrefectClient(API, **options), opener, clock


# -- requests -------------------------------------------------------------------
def test_get_parses_json_and_sends_basic_auth():
    client, opener, _clock = make([(200, {"name": "pool"})])
    assert client.get("/work_pools/pool") == {"name": "pool"}
    call = opener.calls[0]
    assert call["url"] == API + "/work_pools/pool"
    assert call["method"] == "GET"
    assert call["data"] is None
    expected = "Basic " + base64.b64encode(AUTH.encode()).decode()
    assert call["headers"]["Authorization"] == expected
    assert call["kwargs"]["validate_certs"] is True
    assert call["kwargs"]["use_netrc"] is False


def test_post_sends_json_body_and_content_type():
    client, opener, _clock = make([(201, {"id": "1"})])
    assert client.post("work_pools/", {"name": "x"}) == {"id": "1"}
    call = opener.calls[0]
    assert call["method"] == "POST"
    assert json.loads(call["data"].decode()) == {"name": "x"}
    assert call["headers"]["Content-Type"] == "application/json"


def test_no_auth_header_without_auth_string():
    client, opener, _clock = make([(200, True)], auth_string=None)
    client.get("/health")
    assert "Authorization" not in opener.calls[0]["headers"]


def test_empty_body_is_none():
    client, _opener, _clock = make([(204, b"")])
    assert client.delete("/variables/name/x") is None


def test_params_are_encoded_with_json_booleans():
    client, opener, _clock = make([(200, {})])
    client.get("/block_documents/x", params={"include_secrets": True, "skip": None})
    assert opener.calls[0]["url"] == API + "/block_documents/x?include_secrets=true"


def test_tls_options_are_passed():
    client, opener, _clock = make([(200, {})], validate_certs=False, ca_path="/etc/ca.pem")
    client.get("/health")
    assert opener.calls[0]["kwargs"]["validate_certs"] is False
    assert opener.calls[0]["kwargs"]["ca_path"] == "/etc/ca.pem"


def test_api_url_must_be_http():
    with pytest.raises(PrefectAPIError, match="http"):
        PrefectClient("127.0.0.1:4200/api")
    with pytest.raises(PrefectAPIError, match="PREFECT_API_URL"):
        PrefectClient("")


# -- errors ---------------------------------------------------------------------
def test_error_names_method_url_status_and_detail():
    client, _opener, _clock = make([(409, {"detail": "A work pool with this name already exists."})])
    with pytest.raises(PrefectAPIError) as info:
        client.post("/work_pools/", {"name": "x"})
    err = info.value
    assert err.status == 409
    assert err.method == "POST"
    assert err.url == API + "/work_pools/"
    assert err.detail == "A work pool with this name already exists."
    assert str(err) == ("Prefect API request POST %s/work_pools/ failed with HTTP 409:"
                        " A work pool with this name already exists." % API)
    kwargs = err.to_fail_kwargs()
    assert kwargs["msg"] == str(err)
    assert kwargs["status"] == 409


def test_401_explains_credentials_without_showing_them():
    client, _opener, _clock = make([(401, {"exception_message": "Unauthorized"})])
    with pytest.raises(PrefectAPIError) as info:
        client.get("/admin/version")
    message = str(info.value)
    assert "HTTP 401" in message
    assert "Unauthorized" in message
    assert "api_auth_string" in message
    assert AUTH not in message and "s3cr3t" not in message
    assert base64.b64encode(AUTH.encode()).decode() not in json.dumps(info.value.to_fail_kwargs())


def test_validation_error_detail_without_request_body():
    body = {
        "exception_message": "Invalid request received.",
        "exception_detail": [{"loc": ["body", "name"], "msg": "Value error, bad name", "input": "TOPSECRET"}],
        "request_body": {"name": "x", "data": {"password": "TOPSECRET"}},
    }
    client, _opener, _clock = make([(422, body)])
    with pytest.raises(PrefectAPIError) as info:
        client.post("/block_documents/", {"name": "x"})
    assert info.value.detail == "body.name: Value error, bad name"
    assert "TOPSECRET" not in json.dumps(info.value.to_fail_kwargs())


def test_non_json_error_body_is_kept_short():
    client, _opener, _clock = make([(404, b"<html>" + b"x" * 2000)])
    with pytest.raises(PrefectAPIError) as info:
        client.get("/nope")
    assert info.value.detail.startswith("<html>")
    assert len(info.value.detail) <= 500


def test_credentials_in_url_are_not_shown():
    clock = FakeClock()
    opener = FakeOpener(clock, [(500, {"detail": "boom"})])
    client = PrefectClient("http://user:pw-in-url@127.0.0.1:4200/api", opener=opener, retries=0,
                           sleep=clock.sleep, clock=clock.clock)
    with pytest.raises(PrefectAPIError) as info:
        client.get("/x")
    assert "pw-in-url" not in str(info.value)
    assert info.value.url == "http://127.0.0.1:4200/api/x"


@pytest.mark.parametrize("body, expected", [
    ({"detail": "plain"}, "plain"),
    ({"detail": [{"loc": ["body", "x"], "msg": "bad"}]}, "body.x: bad"),
    ({"exception_message": "Unauthorized"}, "Unauthorized"),
    ({"message": "m"}, "m"),
    ("just text", "just text"),
    (b"", None),
    (None, None),
    ({"other": 1}, None),
])
def test_extract_detail(body, expected):
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    assert pc.extract_detail(raw) == expected


def test_invalid_json_answer_is_an_error():
    client, _opener, _clock = make([(200, b"not json")])
    with pytest.raises(PrefectAPIError, match="not JSON"):
        client.get("/x")


# -- retries --------------------------------------------------------------------
def test_503_is_retried_with_exponential_backoff_then_succeeds():
    client, opener, clock = make([(503, {"detail": "starting"}), (503, {}), (503, {}), (200, "3.9.1")])
    assert client.get("/admin/version") == "3.9.1"
    assert len(opener.calls) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_connection_refused_is_retried_and_reported():
    refused = URLError(ConnectionRefusedError(111, "Connection refused"))
    client, opener, clock = make([refused], retries=3, retry_timeout=600)
    with pytest.raises(PrefectAPIError) as info:
        client.get("/admin/version")
    err = info.value
    assert len(opener.calls) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert err.status is None
    assert err.attempts == 4
    assert "Could not reach the Prefect API: GET %s/admin/version" % API in str(err)
    assert "Connection refused" in str(err)
    assert "after 4 attempts" in str(err)


def test_timeouts_are_retried():
    client, opener, _clock = make([socket.timeout("timed out"), (200, {"ok": 1})])
    assert client.get("/x") == {"ok": 1}
    assert len(opener.calls) == 2


def test_backoff_is_capped():
    client, _opener, clock = make([(502, {})], retries=8, retry_timeout=10000, backoff_max=5.0)
    with pytest.raises(PrefectAPIError):
        client.get("/x")
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_total_time_is_bounded_by_retry_timeout():
    # every request takes 3 s; 10 s total allowed: no retry may start that would end later
    client, opener, clock = make([(503, {})], request_cost=3.0, retries=50, retry_timeout=10.0)
    start = clock.now
    with pytest.raises(PrefectAPIError) as info:
        client.get("/x")
    assert clock.now - start <= 10.0 + 3.0
    assert len(opener.calls) < 5
    assert info.value.status == 503
    # the per-request timeout never exceeds what is left of the budget (at least 1 s)
    assert all(call["timeout"] <= 30.0 for call in opener.calls)


def test_request_timeout_shrinks_to_remaining_budget():
    client, opener, _clock = make([(503, {})], request_cost=4.0, retries=5, retry_timeout=12.0, timeout=30)
    with pytest.raises(PrefectAPIError):
        client.get("/x")
    assert opener.calls[0]["timeout"] == 12.0
    assert opener.calls[1]["timeout"] < 12.0


def test_retries_zero_means_one_attempt():
    client, opener, clock = make([(503, {})], retries=0)
    with pytest.raises(PrefectAPIError):
        client.get("/x")
    assert len(opener.calls) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retried(status):
    client, opener, _clock = make([(status, {"detail": "no"})])
    with pytest.raises(PrefectAPIError) as info:
        client.get("/x")
    assert info.value.status == status
    assert len(opener.calls) == 1


def test_retry_after_header_is_honoured_and_capped():
    client, _opener, clock = make([(429, {}, {"Retry-After": "3"}), (429, {}, {"Retry-After": "999"}), (200, {})])
    client.get("/x")
    assert clock.sleeps == [3.0, 15.0]


def test_certificate_failure_is_not_retried():
    err = URLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self signed certificate")
    client, opener, _clock = make([err])
    with pytest.raises(PrefectAPIError) as info:
        client.get("/x")
    assert len(opener.calls) == 1
    assert "TLS certificate validation failed" in str(info.value)


def test_is_ready_does_not_retry_503():
    client, opener, _clock = make([(503, {"detail": "db down"})])
    assert client.is_ready() is False
    assert len(opener.calls) == 1


# -- what may be repeated ------------------------------------------------------------
CREATE_RUN = "/deployments/5b1f4a7e-5d2f-4e0b-9a54-3f3f9b0b8c11/create_flow_run"
RESET = URLError(ConnectionResetError(104, "Connection reset by peer"))


@pytest.mark.parametrize("failure", [
    socket.timeout("timed out"),
    URLError(socket.timeout("timed out")),
    RESET,
    (500, {"detail": "Internal Server Error"}),
    (502, {}),
    (504, {}),
], ids=["read-timeout", "send-timeout", "reset", "500", "502", "504"])
def test_create_post_is_not_repeated_when_it_may_have_been_applied(failure):
    client, opener, clock = make([failure, (201, {"id": "second-run"})])
    with pytest.raises(PrefectAPIError) as info:
        client.post(CREATE_RUN, {"parameters": {}})
    assert len(opener.calls) == 1 and clock.sleeps == []
    assert info.value.not_repeated is True and info.value.attempts == 1
    assert "may have applied the request before the error, so it was not repeated" in str(info.value)
    assert "POST %s%s" % (API, CREATE_RUN) in str(info.value)


def test_patch_is_not_repeated_after_a_timeout():
    client, opener, _clock = make([socket.timeout("timed out"), (204, b"")])
    with pytest.raises(PrefectAPIError, match="not repeated"):
        client.patch("/deployments/x", {"paused": True})
    assert len(opener.calls) == 1


@pytest.mark.parametrize("failure", [
    URLError(ConnectionRefusedError(111, "Connection refused")),
    ConnectionRefusedError(111, "Connection refused"),
    URLError(socket.gaierror(-2, "Name or service not known")),
    (429, {}),
    (503, {"detail": "starting"}),
], ids=["refused", "refused-raw", "dns", "429", "503"])
def test_create_post_is_repeated_when_the_server_certainly_did_not_process_it(failure):
    client, opener, clock = make([failure, (201, {"id": "run"})])
    assert client.post(CREATE_RUN, {}) == {"id": "run"}
    assert len(opener.calls) == 2 and clock.sleeps == [1.0]


@pytest.mark.parametrize("method, path", [
    ("GET", "/flow_runs/x"), ("HEAD", "/health"), ("PUT", "/x"), ("DELETE", "/variables/name/x"),
    ("OPTIONS", "/x"), ("POST", "/flow_runs/filter"), ("POST", "/work_pools/pool/queues/filter"),
    ("POST", "/deployments/count"), ("POST", "/flow_runs/paginate"), ("POST", "/flow_runs/history"),
])
def test_safe_requests_are_repeated_after_a_timeout_or_5xx(method, path):
    client, opener, _clock = make([socket.timeout("timed out"), (502, {}), RESET, (200, {"ok": 1})])
    assert client.request(method, path, data={} if method in ("POST", "PUT") else None) == {"ok": 1}
    assert len(opener.calls) == 4


def test_idempotent_argument_overrides_method_and_path():
    client, opener, _clock = make([socket.timeout("timed out"), (200, {"id": "run"})])
    assert client.post(CREATE_RUN, {"idempotency_key": "k"}, idempotent=True) == {"id": "run"}
    assert len(opener.calls) == 2
    client, opener, _clock = make([(502, {}), (200, "3.9.1")])
    with pytest.raises(PrefectAPIError) as info:
        client.get("/admin/version", idempotent=False)
    assert info.value.status == 502 and info.value.not_repeated and len(opener.calls) == 1


def test_post_paginated_repeats_any_page():
    client, opener, _clock = make([(502, {}), (200, [1])])
    assert client.post_paginated("/some/listing", page_size=5) == [1]
    assert len(opener.calls) == 2


@pytest.mark.parametrize("method, url, idempotent, expected", [
    ("get", API + "/x", None, True),
    ("POST", API + "/flow_runs/filter", None, True),
    ("POST", API + "/flow_runs/filter/", None, True),
    ("POST", API + "/flow_runs/filter?x=1", None, True),
    ("POST", API + "/flow_runs/", None, False),
    ("POST", API + "/filters_of_mine/x", None, False),
    ("POST", API + "/deployments/x/schedules", None, False),
    ("POST", API + "/deployments/x/create_flow_run", True, True),
    ("PATCH", API + "/deployments/x", None, False),
    ("DELETE", API + "/x", False, False),
])
def test_is_safe_to_repeat(method, url, idempotent, expected):
    assert pc.is_safe_to_repeat(method, url, idempotent) is expected


# -- helpers ----------------------------------------------------------------------
def test_get_or_none_and_delete_if_exists():
    client, _opener, _clock = make([(404, {"detail": "Work pool not found."})])
    assert client.get_or_none("/work_pools/x") is None
    assert client.delete_if_exists("/work_pools/x") is False
    client, _opener, _clock = make([(204, b"")])
    assert client.delete_if_exists("/work_pools/x") is True


def test_get_or_none_raises_other_errors():
    client, _opener, _clock = make([(401, {})])
    with pytest.raises(PrefectAPIError):
        client.get_or_none("/work_pools/x")


def test_post_paginated_follows_offsets():
    client, opener, _clock = make([(200, [1, 2]), (200, [3, 4]), (200, [5])])
    assert client.post_paginated("/variables/filter", {"sort": "NAME_ASC"}, page_size=2) == [1, 2, 3, 4, 5]
    bodies = [json.loads(c["data"].decode()) for c in opener.calls]
    assert [(b["offset"], b["limit"]) for b in bodies] == [(0, 2), (2, 2), (4, 2)]
    assert all(b["sort"] == "NAME_ASC" for b in bodies)


def test_post_paginated_max_items():
    client, opener, _clock = make([(200, [1, 2]), (200, [3])])
    assert client.post_paginated("/x/filter", page_size=2, max_items=3) == [1, 2, 3]
    assert json.loads(opener.calls[1]["data"].decode())["limit"] == 1


# -- versions ---------------------------------------------------------------------
@pytest.mark.parametrize("version, expected", [
    ("3.9.1", (3, 9, 1)), ("3.10", (3, 10, 0)), ("3.0.0rc20", (3, 0, 0)), ("v2.20.3+g1", (2, 20, 3)), ("3", (3, 0, 0)),
])
def test_version_tuple(version, expected):
    assert pc.version_tuple(version) == expected


def test_compare_versions():
    assert pc.compare_versions("3.9.1", "3.0.0") == 1
    assert pc.compare_versions("3.0.0", "3.0") == 0
    assert pc.compare_versions("2.20.3", "3.0.0") == -1
    assert pc.compare_versions("3.10.0", "3.9.9") == 1


def test_check_server_version_accepts_3():
    client, _opener, _clock = make([(200, "3.9.1")])
    assert client.check_server_version() == "3.9.1"
    assert client.server_version == "3.9.1"


def test_check_server_version_refuses_old_server():
    client, _opener, _clock = make([(200, "2.20.3")])
    with pytest.raises(PrefectAPIError) as info:
        client.check_server_version("3.0.0")
    assert "runs Prefect 2.20.3" in str(info.value)
    assert ">= 3.0.0" in str(info.value)


def test_check_server_version_refuses_garbage():
    client, _opener, _clock = make([(200, "unknown")])
    with pytest.raises(PrefectAPIError, match="unreadable version"):
        client.check_server_version()


# -- argument spec ------------------------------------------------------------------
def test_argument_spec_env_fallbacks_and_no_log():
    spec = pc.prefect_api_argument_spec()
    assert spec["api_url"]["fallback"][1] == ["PREFECT_API_URL"]
    assert spec["api_auth_string"]["fallback"][1] == ["PREFECT_API_AUTH_STRING"]
    assert spec["api_auth_string"]["no_log"] is True
    assert set(spec) == {"api_url", "api_auth_string", "validate_certs", "ca_path", "timeout", "retries",
                         "retry_timeout"}
    # a fresh dict every call, so modules may change theirs
    spec["api_url"]["required"] = False
    assert pc.prefect_api_argument_spec()["api_url"]["required"] is True


class FakeModule(object):
    def __init__(self, params):
        self.params = params
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise SystemExit(1)


def test_from_module_fails_cleanly(monkeypatch):
    module = FakeModule(dict(api_url=API, api_auth_string=AUTH, validate_certs=True, ca_path=None, timeout=5.0,
                             retries=0, retry_timeout=5.0))

    class Refused(object):
        def open(self, *args, **kwargs):
            raise URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(pc, "build_opener", lambda *handlers: Refused())
    with pytest.raises(SystemExit):
        PrefectClient.from_module(module)
    assert module.failed["msg"].startswith("Could not reach the Prefect API: GET %s/admin/version" % API)
    assert module.failed["status"] is None
    assert AUTH not in json.dumps(module.failed)


class RecordingOpener(object):
    """Stands in for the urllib opener: records the requests, answers a version."""

    def __init__(self, handlers):
        self.handlers = handlers
        self.requests = []

    def open(self, request, timeout=None):
        self.requests.append(request)
        return VersionResponse(200, "3.9.1")


class VersionResponse(object):
    def __init__(self, status, payload):
        self.status = status
        self._body = json.dumps(payload).encode()
        self.headers = {}

    def read(self):
        return self._body


@pytest.fixture
def recording(monkeypatch):
    made = {"openers": [], "contexts": []}
    real = pc.ssl.create_default_context

    def build(*handlers):
        opener = RecordingOpener(handlers)
        made["openers"].append(opener)
        return opener

    def context(cafile=None):
        made["contexts"].append(cafile)
        return real(cafile=cafile)

    monkeypatch.setattr(pc, "build_opener", build)
    monkeypatch.setattr(pc.ssl, "create_default_context", context)
    return made


def test_one_opener_and_tls_context_per_client(recording):
    client = PrefectClient("https://prefect.example:4200/api", auth_string=AUTH)
    answers = [client.get("/admin/version") for dummy in range(3)]
    assert answers == ["3.9.1"] * 3
    assert recording["contexts"] == [None]
    assert len(recording["openers"]) == 1 and len(recording["openers"][0].requests) == 3
    request = recording["openers"][0].requests[0]
    assert request.get_method() == "GET" and request.full_url == "https://prefect.example:4200/api/admin/version"


def test_plain_http_loads_no_certificates(recording):
    PrefectClient(API, auth_string=AUTH).get("/admin/version")
    assert recording["contexts"] == []
    assert not any(isinstance(h, pc.HTTPSHandler) for h in recording["openers"][0].handlers)


def test_unreadable_ca_path_fails_at_once_without_retries(tmp_path, recording):
    sleeps = []
    client = PrefectClient("https://prefect.example:4200/api", ca_path=str(tmp_path / "missing.pem"),
                           sleep=sleeps.append)
    with pytest.raises(PrefectAPIError) as err:
        client.get("/admin/version")
    assert "cannot load the CA certificates from ca_path %s" % (tmp_path / "missing.pem") in str(err.value)
    assert sleeps == [] and recording["openers"] == []


# -- the transport on its own ---------------------------------------------------------
class Redirecting(http.server.BaseHTTPRequestHandler):
    """/old redirects to /new, /missing is a 404; any other path answers its path and User-Agent."""

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        body = json.dumps({"path": self.path, "agent": self.headers.get("User-Agent")}).encode()
        status, headers = {"/old": (307, [("Location", "/new")]), "/missing": (404, [])}.get(self.path, (200, []))
        self.send_response(status)
        for name, value in headers + [("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def local_http():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_transport_answers_every_status_and_follows_redirects_only_when_asked(local_http):
    transport = pc.HTTPTransport()
    followed = transport.open("GET", local_http + "/old")
    assert followed.status == 200 and json.loads(followed.body) == {"path": "/new", "agent": pc.USER_AGENT}
    missing = transport.open("GET", local_http + "/missing", timeout=5)
    assert missing.status == 404 and json.loads(missing.body)["path"] == "/missing"
    kept = pc.HTTPTransport(follow_redirects=False).open("GET", local_http + "/old", headers={"User-Agent": "x"})
    assert kept.status == 307 and kept.headers["Location"] == "/new"


# -- redirects and credentials: two real HTTP servers on two ports (two origins) ---------------
class Recording(http.server.BaseHTTPRequestHandler):
    """Records each request's path and credential headers; /go?to=URL redirects (307) to URL."""

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        seen = {"path": self.path}
        for name in ("Authorization", "Cookie", "X-Registry-Auth", "Proxy-Authorization"):
            if self.headers.get(name) is not None:
                seen[name] = self.headers.get(name)
        self.server.seen.append(seen)
        if self.path.startswith("/go?to="):
            status, headers, body = 307, [("Location", unquote(self.path[len("/go?to="):]))], b""
        else:
            status, headers, body = 200, [("Content-Type", "application/json")], json.dumps(seen).encode()
        self.send_response(status)
        for name, value in headers + [("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def two_origins():
    servers = []
    for dummy in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recording)
        server.seen = []
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
    yield [("http://127.0.0.1:%d" % s.server_address[1], s.seen) for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


CREDENTIALS = {"Cookie": "session=s3cr3t-cookie", "X-Registry-Auth": "eyJwYXNzd29yZCI6InMzY3IzdCJ9",
               "Proxy-Authorization": "Basic cHJveHk6czNjcjN0"}


def test_redirect_to_another_origin_drops_the_credentials(two_origins):
    (home, home_seen), (other, other_seen) = two_origins
    client = PrefectClient(home + "/api", auth_string=AUTH, retries=0)
    answer = client.get(home + "/go?to=" + quote(other + "/landing", safe=""))
    assert answer == {"path": "/landing"}
    assert other_seen == [{"path": "/landing"}]
    # the first hop, to its own origin, had the credentials
    assert home_seen[0]["Authorization"] == "Basic " + base64.b64encode(AUTH.encode()).decode()
    # the transport on its own: cookies, registry and proxy credentials stay home as well
    headers = dict(CREDENTIALS, Authorization="Bearer t0k")
    reply = pc.HTTPTransport().open("GET", home + "/go?to=" + quote(other + "/raw", safe=""), headers=headers)
    assert reply.status == 200 and other_seen[-1] == {"path": "/raw"}
    assert home_seen[-1] == dict(CREDENTIALS, Authorization="Bearer t0k", path=home_seen[-1]["path"])


def test_redirect_within_the_origin_keeps_the_credentials(two_origins):
    (home, home_seen), (_other, other_seen) = two_origins
    expected = "Basic " + base64.b64encode(AUTH.encode()).decode()
    client = PrefectClient(home + "/api", auth_string=AUTH, retries=0)
    answer = client.get(home + "/go?to=" + quote("/api/here", safe=""))
    assert answer == {"path": "/api/here", "Authorization": expected}
    assert [s.get("Authorization") for s in home_seen] == [expected, expected] and other_seen == []


def test_redirect_back_home_after_another_origin_has_no_credentials(two_origins):
    (home, home_seen), (other, _other_seen) = two_origins
    back = other + "/go?to=" + quote(home + "/back", safe="")
    answer = pc.HTTPTransport().open("GET", home + "/go?to=" + quote(back, safe=""),
                                     headers={"Authorization": "Bearer t0k"})
    assert json.loads(answer.body) == {"path": "/back"} and home_seen[-1] == {"path": "/back"}


@pytest.mark.parametrize("old, new, keeps", [
    ("http://a:4200/api/x", "http://a:4200/api/y", True),
    ("http://A:80/x", "http://a/y", True),
    ("https://a/x", "https://a:443/y", True),
    ("http://a/x", "https://a/y", True),
    ("http://a:4200/x", "https://a/y", False),
    ("http://a:4200/x", "http://a:4201/x", False),
    ("http://a/x", "http://b/x", False),
    ("https://a/x", "http://a/x", False),
    ("https://a/x", "https://a.evil/x", False),
])
def test_redirect_keeps_credentials(old, new, keeps):
    assert pc.redirect_keeps_credentials(old, new) is keeps
