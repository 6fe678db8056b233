# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the S3 sync: upload plans, signing (AWS's published examples), URLs, directory scans."""

from __future__ import annotations

import datetime
import hashlib
import io
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils import s3_sync as s3
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import HTTPTransport


def test_s3_upload_plan():
    local = {"weather.py": "aaa", "lib/util.py": "bbb"}
    remote = {"weather/weather.py": '"aaa"', "weather/lib/util.py": "old", "weather/stale.py": "ccc"}
    plan = s3.plan_s3_upload(local, remote, "/weather/")
    assert plan == {"upload": [("lib/util.py", "weather/lib/util.py")], "unchanged": ["weather/weather.py"],
                    "delete": []}
    plan = s3.plan_s3_upload(local, remote, "weather", delete_extra=True)
    assert plan["delete"] == ["weather/stale.py"]
    plan = s3.plan_s3_upload(local, {}, "")
    assert [k for _r, k in plan["upload"]] == ["lib/util.py", "weather.py"]


# ---------------------------------------------------------------- S3 signing (AWS's published examples)

AWS_EXAMPLE = dict(access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                   region="us-east-1", now=datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc))


def test_sigv4_get_object_example():
    headers = s3.signature_v4_headers("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                                      {"Range": "bytes=0-9"}, s3.EMPTY_SHA256, **AWS_EXAMPLE)
    assert headers["Authorization"].endswith(
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_sigv4_list_objects_example():
    headers = s3.signature_v4_headers("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", {},
                                      s3.EMPTY_SHA256, **AWS_EXAMPLE)
    assert headers["Authorization"].endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_s3_urls():
    custom = s3.S3Client("a", "b", endpoint_url="http://127.0.0.1:8333/")
    assert custom._url("flows", "weather/dir with space/a+b.py") == \
        "http://127.0.0.1:8333/flows/weather/dir%20with%20space/a%2Bb.py"
    assert custom._url("flows", query={"prefix": "weather/", "list-type": "2"}) == \
        "http://127.0.0.1:8333/flows?list-type=2&prefix=weather%2F"
    aws = s3.S3Client("a", "b", region="eu-west-3")
    assert aws._url("flows", "x.py") == "https://flows.s3.eu-west-3.amazonaws.com/x.py"


def test_s3_client_needs_both_keys():
    with pytest.raises(s3.S3Error, match="incomplete"):
        s3.S3Client("a", "")


def test_scan_directory_excludes(tmp_path):
    (tmp_path / "weather.py").write_text("print(1)\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "weather.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("")
    (tmp_path / "lib" / "old.pyc").write_bytes(b"x")
    files = s3.scan_directory(str(tmp_path), ["__pycache__", "*.pyc"])
    assert files == {"weather.py": hashlib.md5(b"print(1)\n").hexdigest(),  # nosec - S3 ETag
                     "lib/util.py": "d41d8cd98f00b204e9800998ecf8427e"}


# ---------------------------------------------------------------- requests through the collection's HTTP stack

class RecordingOpener(object):
    """An ``open_url``-shaped opener for HTTPTransport: records requests, answers (status, body)."""

    def __init__(self, status, body=b""):
        self.status, self.body, self.calls = status, body, []

    def __call__(self, url, data=None, headers=None, method=None, timeout=None, **kwargs):
        self.calls.append(dict(url=url, data=data, headers=headers, method=method, kwargs=kwargs))
        if self.status >= 300:
            raise HTTPError(url, self.status, "error", {}, io.BytesIO(self.body))
        return FakeAnswer(self.status, self.body)


class FakeAnswer(object):
    def __init__(self, status, body):
        self.status, self._body, self.headers = status, body, {}

    def read(self):
        return self._body


def s3_client(opener, **kwargs):
    transport = HTTPTransport(validate_certs=False, follow_redirects=False, opener=opener)
    return s3.S3Client("AK", "SECRET", endpoint_url="http://127.0.0.1:8333", transport=transport, **kwargs)


def test_put_is_signed_and_sent_through_the_transport(tmp_path):
    (tmp_path / "w.py").write_bytes(b"x = 1\n")
    opener = RecordingOpener(200)
    s3_client(opener).put_file("flows", "code/w.py", str(tmp_path / "w.py"))
    call = opener.calls[0]
    assert call["method"] == "PUT" and call["url"] == "http://127.0.0.1:8333/flows/code/w.py"
    assert call["data"] == b"x = 1\n" and call["headers"]["Content-Length"] == "6"
    assert call["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/")
    assert call["kwargs"]["validate_certs"] is False
    assert "SECRET" not in repr(call)


def test_s3_errors_name_the_code_and_hint_at_credentials():
    body = b"<Error><Code>SignatureDoesNotMatch</Code><Message>bad signature</Message></Error>"
    with pytest.raises(s3.S3Error) as err:
        s3_client(RecordingOpener(403, body)).delete_object("flows", "code/w.py")
    assert str(err.value) == ("S3 DELETE s3://flows/code/w.py failed with HTTP 403: SignatureDoesNotMatch - bad"
                              " signature (check the S3 credentials and the bucket's permissions)")
    assert err.value.status == 403 and err.value.code == "SignatureDoesNotMatch"


def test_no_answer_is_an_s3_error():
    def refused(url, **kwargs):
        raise URLError(ConnectionRefusedError(111, "Connection refused"))

    with pytest.raises(s3.S3Error, match="Could not reach the S3 endpoint http://127.0.0.1:8333: .*refused"):
        s3_client(refused).list_objects("flows")
