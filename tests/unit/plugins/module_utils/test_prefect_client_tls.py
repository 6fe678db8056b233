# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PrefectClient over real TLS: a local HTTPS endpoint with a self-signed certificate.

The endpoint is Python's http.server wrapped in TLS, answering like Prefect's
/api/admin/version (a stand-in: Prefect's own server has no TLS option; deployments
put a reverse proxy in front). The handshakes, certificate checks and the basic-auth
header are real.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import threading

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import PrefectAPIError, PrefectClient

cryptography = pytest.importorskip("cryptography")
from cryptography import x509  # noqa: E402  pylint: disable=wrong-import-position
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402  pylint: disable=wrong-import-position
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402  pylint: disable=wrong-import-position
from cryptography.x509.oid import NameOID  # noqa: E402  pylint: disable=wrong-import-position

AUTH = "admin:tls-s3cret"


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u"localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(u"localhost"),
                                                        x509.IPAddress(ipaddress.ip_address(u"127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Handler(http.server.BaseHTTPRequestHandler):
    seen = []
    # /api/moved answers a redirect to this URL (set by a test)
    moved_to = None

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        Handler.seen.append(self.headers.get("Authorization"))
        if self.path == "/api/moved" and Handler.moved_to:
            self.send_response(302)
            self.send_header("Location", Handler.moved_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        expected = "Basic " + base64.b64encode(AUTH.encode()).decode()
        status, body = (200, "3.9.1") if self.headers.get("Authorization") == expected else (401, {"detail": "no"})
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def https_api(tmp_path):
    cert_path, key_path = self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.seen = []
    Handler.moved_to = None
    yield "https://127.0.0.1:%d/api" % server.server_address[1], str(cert_path)
    server.shutdown()
    server.server_close()


def test_ca_path_verifies_the_server(https_api):
    url, ca = https_api
    client = PrefectClient(url, auth_string=AUTH, ca_path=ca, retries=0)
    assert client.get("/admin/version") == "3.9.1"
    assert client.get("/admin/version") == "3.9.1"
    assert Handler.seen == ["Basic " + base64.b64encode(AUTH.encode()).decode()] * 2


def test_unknown_certificate_is_refused_without_retries(https_api):
    url, _ca = https_api
    sleeps = []
    client = PrefectClient(url, auth_string=AUTH, retries=3, sleep=sleeps.append)
    with pytest.raises(PrefectAPIError) as err:
        client.get("/admin/version")
    assert "TLS certificate validation failed" in str(err.value)
    assert err.value.attempts == 1 and sleeps == []
    assert Handler.seen == []
    assert AUTH not in str(err.value)


def test_validate_certs_false_accepts_it(https_api):
    url, _ca = https_api
    assert PrefectClient(url, auth_string=AUTH, validate_certs=False).get("/admin/version") == "3.9.1"


def test_wrong_credentials_over_tls_name_the_status(https_api):
    url, ca = https_api
    with pytest.raises(PrefectAPIError) as err:
        PrefectClient(url, auth_string="admin:wrong", ca_path=ca).get("/admin/version")
    assert err.value.status == 401 and "wrong" not in str(err.value)


class PlainHandler(http.server.BaseHTTPRequestHandler):
    """A plain-http endpoint that records whatever reaches it."""
    seen = []

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        PlainHandler.seen.append((self.path, self.headers.get("Authorization")))
        raw = json.dumps("3.9.1").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def plain_http():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PlainHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    PlainHandler.seen = []
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_redirect_from_https_to_http_is_refused(https_api, plain_http):
    url, ca = https_api
    Handler.moved_to = plain_http + "/api/admin/version"
    sleeps = []
    client = PrefectClient(url, auth_string=AUTH, ca_path=ca, retries=3, sleep=sleeps.append)
    with pytest.raises(PrefectAPIError) as err:
        client.get("/moved")
    assert PlainHandler.seen == []
    assert err.value.status == 302 and sleeps == []
    assert "redirected to %s/api/admin/version, not followed: it leaves https for http" % plain_http in str(err.value)
    assert AUTH not in str(err.value)
    assert base64.b64encode(AUTH.encode()).decode() not in str(err.value)
