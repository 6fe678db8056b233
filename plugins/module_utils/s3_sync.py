# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Syncing a deployment's code directory to an S3 folder, on the standard library.

The ``deployment`` module uploads flow code to S3 from hosts that usually have
neither ``boto3`` nor ``prefect`` for the Python that runs Ansible modules, so the
few calls it needs (list objects v2, put object, delete object, head bucket) are
signed here (AWS Signature Version 4) and sent through the collection's one HTTP
stack, ``prefect_client.HTTPTransport`` (one opener, one TLS context per client;
redirects are not followed).

- ``S3Client(access_key, secret_key, region, endpoint_url, session_token,
  validate_certs, ca_path, timeout)``: with ``endpoint_url`` (SeaweedFS, MinIO, Ceph,
  ...) requests use path-style URLs (``ENDPOINT/BUCKET/KEY``); without it, AWS's
  virtual-hosted URLs (``https://BUCKET.s3.REGION.amazonaws.com/KEY``). Failures
  raise ``S3Error``.
- ``scan_directory(root, exclude)``: ``{relative path: md5}`` of the local files.
- ``plan_s3_upload(local, remote, folder, delete_extra)``: what to upload, delete or
  leave (pure); ``s3_key(folder, relative path)``.
- ``S3Sync(source, prefect_client)``: the whole sync of the module's ``source``
  option: credentials from the ``aws-credentials`` block, ``plan()``, ``apply()``,
  and what the module returns and shows (``result()``, ``diff_objects()``).

The module imports this file only for S3 sources.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import xml.etree.ElementTree as ET

from urllib.error import URLError
from urllib.parse import quote, urlsplit

from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

from ansible_collections.selfhosted.prefect.plugins.module_utils.deployment_fields import code_files, s3_folder
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import HTTPTransport, TransportError

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(Exception):
    """A failed S3 call; ``status`` is the HTTP status (None if no answer), ``code`` S3's error code."""

    def __init__(self, message, status=None, code=None):
        super(S3Error, self).__init__(message)
        self.status = status
        self.code = code


def _uri_encode(value, safe="-_.~"):
    return quote(to_bytes(value), safe=safe)


def _sign(key, msg):
    return hmac.new(key, to_bytes(msg), hashlib.sha256).digest()


def file_md5(path, chunk=1024 * 1024):
    digest = hashlib.md5()  # nosec - matches S3 ETags, not used for security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def signature_v4_headers(method, url, headers, payload_hash, access_key, secret_key, region,
                         service="s3", now=None, session_token=None):
    """The headers (``Authorization``, ``x-amz-date``, ``x-amz-content-sha256``,
    ``host``, optionally ``x-amz-security-token``) that sign a request.

    ``url`` must already be percent-encoded exactly as it is sent.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = now.strftime("%Y%m%d")
    parts = urlsplit(url)
    host = parts.netloc
    signed = {k.lower(): " ".join(to_text(v).split()) for k, v in (headers or {}).items()}
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_hash
    if session_token:
        signed["x-amz-security-token"] = session_token
    query_items = []
    if parts.query:
        for item in parts.query.split("&"):
            key, _sep, value = item.partition("=")
            query_items.append((key, value))
    canonical_query = "&".join("%s=%s" % kv for kv in sorted(query_items))
    signed_names = sorted(signed)
    canonical_headers = "".join("%s:%s\n" % (name, signed[name]) for name in signed_names)
    signed_headers = ";".join(signed_names)
    canonical_request = "\n".join([
        method.upper(), parts.path or "/", canonical_query, canonical_headers, signed_headers, payload_hash,
    ])
    scope = "%s/%s/%s/aws4_request" % (date_stamp, region, service)
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(to_bytes(canonical_request)).hexdigest(),
    ])
    key = _sign(to_bytes("AWS4" + secret_key), date_stamp)
    key = _sign(key, region)
    key = _sign(key, service)
    key = _sign(key, "aws4_request")
    signature = hmac.new(key, to_bytes(string_to_sign), hashlib.sha256).hexdigest()
    out = dict((k, v) for k, v in signed.items() if k != "host")
    out["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, signed_headers, signature)
    return out


def _strip_ns(tag):
    return tag.split("}", 1)[1] if "}" in tag else tag


def _error_from_body(body):
    code = message = None
    try:
        root = ET.fromstring(body)
        for child in root:
            if _strip_ns(child.tag) == "Code":
                code = child.text
            elif _strip_ns(child.tag) == "Message":
                message = child.text
    except ET.ParseError:
        pass
    return code, message


class S3Client(object):
    """Just enough S3 for uploading a directory of flow code."""

    def __init__(self, access_key, secret_key, region=None, endpoint_url=None, session_token=None,
                 validate_certs=True, ca_path=None, timeout=60, transport=None):
        if not access_key or not secret_key:
            raise S3Error("S3 credentials are incomplete: an access key id and a secret access key are needed")
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token
        self.region = region or "us-east-1"
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.timeout = timeout
        self.transport = transport or HTTPTransport(validate_certs=validate_certs, ca_path=ca_path,
                                                    follow_redirects=False)

    def _url(self, bucket, key=None, query=None):
        if self.endpoint_url:
            url = "%s/%s" % (self.endpoint_url, _uri_encode(bucket))
            if key:
                url += "/" + _uri_encode(key, safe="-_.~/")
        else:
            url = "https://%s.s3.%s.amazonaws.com/" % (bucket, self.region)
            if key:
                url += _uri_encode(key, safe="-_.~/")
        if query:
            url += "?" + "&".join("%s=%s" % (_uri_encode(k), _uri_encode(v)) for k, v in sorted(query.items()))
        return url

    def request(self, method, bucket, key=None, query=None, body=None, headers=None):
        """One signed request; ``(status, body, headers)`` of a 2xx answer, else S3Error."""
        url = self._url(bucket, key, query)
        payload_hash = hashlib.sha256(body).hexdigest() if body is not None else EMPTY_SHA256
        send = signature_v4_headers(method, url, headers or {}, payload_hash, self.access_key,
                                    self.secret_key, self.region, session_token=self.session_token)
        for name, value in (headers or {}).items():
            send[name] = value
        if body is not None:
            send["Content-Length"] = str(len(body))
        try:
            resp = self.transport.open(method, url, body, send, self.timeout)
        except (TransportError, URLError, OSError) as exc:
            raise S3Error("Could not reach the S3 endpoint %s: %s"
                          % (self.endpoint_url or url, to_native(getattr(exc, "reason", exc))))
        if 200 <= resp.status < 300:
            return resp.status, resp.body, resp.headers
        code, message = _error_from_body(resp.body)
        text = "S3 %s s3://%s/%s failed with HTTP %s" % (method, bucket, key or "", resp.status)
        if code or message:
            text += ": %s" % " - ".join(x for x in (code, message) if x)
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied") or resp.status in (401, 403):
            text += " (check the S3 credentials and the bucket's permissions)"
        raise S3Error(text, status=resp.status, code=code)

    def bucket_exists(self, bucket):
        try:
            self.request("HEAD", bucket)
        except S3Error as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_objects(self, bucket, prefix=""):
        """``{key: etag}`` of every object under ``prefix``."""
        objects = {}
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            _status, body, _headers = self.request("GET", bucket, query=query)
            root = ET.fromstring(body)
            token = None
            truncated = False
            for child in root:
                tag = _strip_ns(child.tag)
                if tag == "Contents":
                    key = etag = None
                    for field in child:
                        name = _strip_ns(field.tag)
                        if name == "Key":
                            key = field.text
                        elif name == "ETag":
                            etag = (field.text or "").strip('"')
                    if key is not None and not key.endswith("/"):
                        objects[key] = etag or ""
                elif tag == "IsTruncated":
                    truncated = (child.text or "").strip().lower() == "true"
                elif tag == "NextContinuationToken":
                    token = child.text
            if not truncated or not token:
                return objects

    def put_file(self, bucket, key, path, content_type="application/octet-stream"):
        with open(path, "rb") as handle:
            data = handle.read()
        headers = {"Content-Type": content_type,
                   "Content-MD5": _b64_md5(data)}
        self.request("PUT", bucket, key, body=data, headers=headers)

    def delete_object(self, bucket, key):
        self.request("DELETE", bucket, key)


def _b64_md5(data):
    return to_native(base64.b64encode(hashlib.md5(data).digest()))  # nosec - S3 integrity header


def scan_directory(root, exclude=None):
    """``{relative_posix_path: md5}`` of the files under ``root`` (``code_files``: paths
    matching one of the ``exclude`` glob patterns are skipped)."""
    root = os.path.abspath(root)
    return dict((rel, file_md5(os.path.join(root, rel))) for rel in code_files(root, exclude))


def s3_key(folder, relative_path):
    folder = s3_folder(folder)
    relative_path = relative_path.replace("\\", "/").lstrip("/")
    return "%s/%s" % (folder, relative_path) if folder else relative_path


def plan_s3_upload(local_files, remote_objects, folder, delete_extra=False):
    """Which files to upload and which objects to delete.

    ``local_files``: ``{relative_path: md5_hex}``; ``remote_objects``:
    ``{key: etag}`` (quotes allowed) under the folder. A file is uploaded when
    its object is missing or its ETag is not the file's MD5 (a multipart ETag,
    with a ``-``, never equals an MD5, so such objects are uploaded again).
    Returns ``dict(upload=[(relative_path, key)], unchanged=[key], delete=[key])``.
    """
    upload, unchanged = [], []
    expected_keys = set()
    for relative_path in sorted(local_files):
        key = s3_key(folder, relative_path)
        expected_keys.add(key)
        etag = remote_objects.get(key)
        if etag is not None and etag.strip('"').lower() == local_files[relative_path].lower():
            unchanged.append(key)
        else:
            upload.append((relative_path, key))
    delete = sorted(k for k in remote_objects if k not in expected_keys) if delete_extra else []
    return {"upload": upload, "unchanged": unchanged, "delete": delete}


class S3Sync(object):
    """The module's S3 source: ``source.path`` synced to ``source.folder`` of ``source.bucket``.

    ``client`` is the PrefectClient the ``aws-credentials`` block is read with. Every
    failure raises S3Error with the message the module fails with."""

    def __init__(self, source, client):
        self.source = source
        self.client = client
        self.bucket = source["bucket"]
        self.folder = s3_folder(source.get("folder"))
        self.s3 = None
        self.local = self.remote = self.plan = None

    def connect(self):
        """An S3Client with the upload credentials: the options', else the block's."""
        credentials = self.source.get("credentials") or {}
        block_name = credentials["block"]
        block = self.client.get_or_none("/block_types/slug/aws-credentials/block_documents/name/%s"
                                        % quote(block_name, safe=""), params={"include_secrets": True})
        if block is None:
            raise S3Error("the aws-credentials block %r does not exist on the Prefect server; create it first"
                          " (selfhosted.prefect.block_document) with the S3 credentials and"
                          " aws_client_parameters.endpoint_url" % block_name)
        data = block.get("data") or {}
        access_key = credentials.get("aws_access_key_id") or data.get("aws_access_key_id")
        secret_key = credentials.get("aws_secret_access_key") or data.get("aws_secret_access_key")
        if not access_key or not secret_key:
            raise S3Error("no S3 credentials for the upload: the block %r has no aws_access_key_id/"
                          "aws_secret_access_key and source.credentials gives none" % block_name)
        client_parameters = data.get("aws_client_parameters") or {}
        return S3Client(access_key, secret_key, region=self.source.get("region") or data.get("region_name"),
                        endpoint_url=self.source.get("endpoint_url") or client_parameters.get("endpoint_url"),
                        session_token=credentials.get("aws_session_token") or data.get("aws_session_token"),
                        validate_certs=self.source.get("validate_certs", True))

    def make_plan(self):
        """Read the folder and the directory, and plan the sync."""
        self.s3 = self.connect()
        try:
            self.remote = self.s3.list_objects(self.bucket, self.folder + "/" if self.folder else "")
        except S3Error as exc:
            if exc.code == "NoSuchBucket" or (exc.status == 404 and not exc.code):
                raise S3Error("the S3 bucket %r does not exist at %s; create it first"
                              % (self.bucket, self.s3.endpoint_url or "AWS"))
            raise
        self.local = scan_directory(self.source["path"], self.source.get("exclude"))
        if not self.local:
            raise S3Error("source.path %s has no file to upload" % self.source["path"])
        self.plan = plan_s3_upload(self.local, self.remote, self.folder, delete_extra=self.source.get("delete_extra"))

    @property
    def changed(self):
        return bool(self.plan["upload"] or self.plan["delete"])

    def apply(self):
        for relative, key in self.plan["upload"]:
            self.s3.put_file(self.bucket, key, os.path.join(self.source["path"], relative))
        for key in self.plan["delete"]:
            self.s3.delete_object(self.bucket, key)

    def diff_objects(self):
        """``(before, after)``: ``{key: etag}`` of the objects to replace or delete, ``{key: md5}`` of the uploads."""
        keys = [k for _r, k in self.plan["upload"]] + list(self.plan["delete"])
        before = dict((k, self.remote[k]) for k in sorted(keys) if k in self.remote)
        uploads = dict((k, self.local[r]) for r, k in self.plan["upload"])
        return before, dict((k, uploads[k]) for k in sorted(uploads))

    def result(self):
        """The module's ``s3_upload`` return value."""
        return dict(bucket=self.bucket, folder=self.folder, uploaded=[k for _r, k in self.plan["upload"]],
                    unchanged=len(self.plan["unchanged"]), deleted=list(self.plan["delete"]))
