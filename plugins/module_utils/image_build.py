# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A flow's image built from its code and pushed, through the Docker Engine API.

The ``deployment`` module's ``source.build`` (``type: docker``) makes the image that
holds a flow's code, on the standard library and the engine's unix socket
(``docker_exec.DockerExecClient``): no Docker SDK, no buildx. The engine does the work
the ``docker build`` / ``docker push`` commands ask it to do, so it trusts a registry
the way the ``docker`` CLI of that machine does (``/etc/docker/certs.d``).

- The build context is a tar archive made here, byte for byte the same for the same
  files: sorted names, mtime 0, owner 0:0, modes 0644/0755. Paths matching
  ``build.exclude`` are left out.
- Without ``build.dockerfile`` a Dockerfile is written into the context
  (``GENERATED_DOCKERFILE``): ``FROM base_image``, the code copied to ``working_dir``,
  and ``pip install -r requirements.txt`` when the context has one.
- The tag is ``sha-`` and 12 hex digits of the SHA-256 of the context archive and the
  build arguments: code that did not change names an image that already exists, so
  nothing is built or pushed and the deployment does not change; edited code names
  a new image, and the deployment moves to it.
- Whether the image exists is asked of the registry (``GET /distribution/REF/json``, the
  engine asks the registry with the given credentials), or of the engine when
  ``build.push`` is false.

Interface: ``split_image(ref)``, ``generated_dockerfile(...)``, ``context_archive(...)``,
``content_tag(archive, args)``, ``registry_of(repository)``, ``ImageBuilder`` (``plan()``,
``apply()``, ``result()``), ``ImageBuildError``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tarfile

from urllib.parse import quote, urlencode

from ansible_collections.selfhosted.prefect.plugins.module_utils.deployment_fields import code_files
from ansible_collections.selfhosted.prefect.plugins.module_utils.docker_exec import (
    DEFAULT_DOCKER_HOST,
    DockerExecClient,
    DockerExecError,
)

GENERATED_DOCKERFILE = ".selfhosted-prefect.Dockerfile"
CONTENT_LABEL = "io.github.selfhosted-prefect.content"
DEFAULT_EXCLUDE = ["__pycache__", "*.pyc", ".git", ".venv", ".DS_Store"]
MAX_CONTEXT_BYTES = 512 * 1024 * 1024
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImageBuildError(Exception):
    """A build, push or lookup that failed; the message is what the module fails with."""


def split_image(ref):
    """``(repository, tag or None)`` of an image reference; a digest is refused."""
    if not ref or "@" in ref:
        raise ImageBuildError("image %r: give a repository (and optionally a tag), not a digest" % (ref,))
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = ref.rsplit(":", 1)
        if not _TAG.match(tag):
            raise ImageBuildError("image %r: %r is not a valid tag" % (ref, tag))
        return repository, tag
    return ref, None


def registry_of(repository):
    """The registry part of a repository (``HOST[:PORT]``), ``docker.io`` for Docker Hub names."""
    first, sep, _rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def generated_dockerfile(base_image, working_dir, has_requirements):
    lines = [
        "# Written by selfhosted.prefect's deployment module (source.build without a dockerfile).",
        "FROM %s" % base_image,
        "WORKDIR %s" % working_dir,
        "COPY . %s" % working_dir,
    ]
    if has_requirements:
        lines.append("RUN python -m pip install --no-cache-dir -r requirements.txt")
    return "\n".join(lines) + "\n"


def _member(name, data, mode):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def context_archive(root, exclude=None, extra=None):
    """``(tar bytes, files)`` of the build context: the same files give the same bytes.
    ``extra`` is ``{name: text}`` added to the archive (the generated Dockerfile)."""
    files = code_files(root, exclude)
    extra = dict(extra or {})
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(set(files) | set(extra)):
            if rel in extra:
                data, mode = extra[rel].encode("utf-8"), 0o644
            else:
                path = os.path.join(root, rel)
                with open(path, "rb") as handle:
                    data = handle.read()
                mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
            total += len(data)
            if total > MAX_CONTEXT_BYTES:
                raise ImageBuildError("the build context %s is larger than %d MiB; exclude what the image"
                                      " does not need (source.build.exclude)" % (root, MAX_CONTEXT_BYTES >> 20))
            tar.addfile(_member(rel, data, mode), io.BytesIO(data))
    return buf.getvalue(), files


def content_tag(archive, args=None):
    digest = hashlib.sha256(archive)
    digest.update(json.dumps(args or {}, sort_keys=True).encode("utf-8"))
    return "sha-" + digest.hexdigest()[:12]


def auth_header(username, password, server):
    """The engine's ``X-Registry-Auth`` value (never logged)."""
    doc = {"username": username, "password": password, "serveraddress": server}
    return base64.urlsafe_b64encode(json.dumps(doc).encode("utf-8")).decode("ascii")


def _stream_lines(data):
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            yield json.loads(line)
        except ValueError:
            yield {"stream": line}


class ImageBuilder(object):
    """The image of a docker source with ``build``: plan (read only), then apply.

    ``build`` is the module's ``source.build``; ``credentials`` ``(username, password)``
    or None; ``working_dir`` the code's directory in the image."""

    def __init__(self, image, build, working_dir, credentials=None):
        self.repository, tag = split_image(image)
        if tag:
            raise ImageBuildError("source.image %r has a tag, but with source.build the tag is made from the"
                                  " code (sha-...): give the repository only, e.g. %s" % (image, self.repository))
        self.build = build
        self.root = build["path"]
        self.working_dir = working_dir
        self.credentials = credentials
        self.registry = registry_of(self.repository)
        self.engine = DockerExecClient(build.get("docker_host") or DEFAULT_DOCKER_HOST,
                                       timeout=build.get("timeout") or 600)
        self.tag = self.ref = self.archive = None
        self.files = []
        self.existed = self.built = self.pushed = False
        self.dockerfile = None

    # -- plan ---------------------------------------------------------------------------
    def _dockerfile(self):
        """``(name in the context, extra files)`` for the build."""
        given = self.build.get("dockerfile")
        if given:
            if os.path.isabs(given) or ".." in given.replace("\\", "/").split("/"):
                raise ImageBuildError("source.build.dockerfile %r must be a path inside source.build.path" % given)
            if not os.path.isfile(os.path.join(self.root, given)):
                raise ImageBuildError("source.build.dockerfile %s is not a file of %s" % (given, self.root))
            return given, {}
        if not self.build.get("base_image"):
            if os.path.isfile(os.path.join(self.root, "Dockerfile")):
                return "Dockerfile", {}
            raise ImageBuildError("source.build needs base_image (an image with Prefect and the flow's"
                                  " dependencies) or a Dockerfile in %s" % self.root)
        has_requirements = os.path.isfile(os.path.join(self.root, "requirements.txt"))
        text = generated_dockerfile(self.build["base_image"], self.working_dir, has_requirements)
        return GENERATED_DOCKERFILE, {GENERATED_DOCKERFILE: text}

    def plan(self):
        """Make the context and its tag, and find whether the image already exists."""
        if not os.path.isdir(self.root):
            raise ImageBuildError("source.build.path %s is not a directory on this host" % self.root)
        self.dockerfile, extra = self._dockerfile()
        exclude = self.build.get("exclude")
        self.archive, self.files = context_archive(self.root, DEFAULT_EXCLUDE if exclude is None else exclude, extra)
        if self.dockerfile not in self.files and self.dockerfile not in extra:
            raise ImageBuildError("source.build.dockerfile %s is excluded from the context by source.build.exclude"
                                  % self.dockerfile)
        self.tag = content_tag(self.archive, self.build.get("args"))
        self.ref = "%s:%s" % (self.repository, self.tag)
        self.existed = self.in_registry() if self.build.get("push", True) else self.local_image() is not None
        return self

    @property
    def changed(self):
        return not self.existed

    def _auth_headers(self, name="X-Registry-Auth"):
        if not self.credentials:
            return {}
        username, password = self.credentials
        return {name: auth_header(username, password, self.registry)}

    def local_image(self):
        try:
            return self.engine._json("GET", "/images/%s/json" % quote(self.ref, safe=""), allow_404=True,
                                     action="inspecting image %s" % self.ref)
        except DockerExecError as exc:
            raise ImageBuildError(str(exc)) from None

    def in_registry(self):
        """Whether the registry holds ``self.ref`` (asked by the engine, with the credentials)."""
        try:
            status, _data = self.engine.request("GET", "/distribution/%s/json" % quote(self.ref, safe=""),
                                                allow_404=True, headers=self._auth_headers(),
                                                action="looking up %s in its registry" % self.ref, timeout=60)
        except DockerExecError as exc:
            detail = str(exc.detail).lower()
            if exc.status in (401, 403) or any(word in detail for word in (
                    "unauthorized", "authentication required", "no basic auth credentials", "denied")):
                raise ImageBuildError("the registry %s refused the credentials%s: %s" % (
                    self.registry, "" if self.credentials else " (none were given: set source.registry_credentials)",
                    exc.detail)) from None
            if "manifest unknown" in detail or "not found" in detail:
                return False
            raise ImageBuildError(str(exc)) from None
        return status != 404

    # -- apply --------------------------------------------------------------------------
    def _run_stream(self, method, path, action, **kwargs):
        """A streaming engine call, which may take ``build.timeout`` seconds in all (however
        often the engine reports progress); the stream's ``error`` lines fail it."""
        limit = self.engine.timeout
        try:
            _status, data = self.engine.request(method, path, action=action, total_timeout=limit,
                                                overdue="took longer than %s s (source.build.timeout)" % limit,
                                                **kwargs)
        except DockerExecError as exc:
            raise ImageBuildError(str(exc)) from None
        lines = list(_stream_lines(data))
        errors = [line.get("error") or (line.get("errorDetail") or {}).get("message")
                  for line in lines if line.get("error") or line.get("errorDetail")]
        if errors:
            tail = "".join(str(line.get("stream", "")) for line in lines[-30:] if "stream" in line).strip()
            raise ImageBuildError("%s failed: %s%s" % (action, errors[-1], ("\n" + tail) if tail else ""))
        return lines

    def apply(self):
        """Build when the engine lacks the image, then push when asked. Only after plan()."""
        if self.existed:
            return self
        if self.local_image() is None:
            query = {"t": self.ref, "dockerfile": self.dockerfile, "rm": "1", "forcerm": "1",
                     "labels": json.dumps({CONTENT_LABEL: self.tag}),
                     "pull": "1" if self.build.get("pull") else ""}
            if self.build.get("args"):
                query["buildargs"] = json.dumps({k: str(v) for k, v in self.build["args"].items()})
            headers = {}
            if self.credentials:
                username, password = self.credentials
                config = {self.registry: {"username": username, "password": password}}
                headers["X-Registry-Config"] = base64.urlsafe_b64encode(
                    json.dumps(config).encode("utf-8")).decode("ascii")
            self._run_stream("POST", "/build?" + urlencode(query), "building %s" % self.ref,
                             raw=self.archive, headers=headers)
            self.built = True
        if self.build.get("push", True):
            # The engine wants the header even for an anonymous push.
            headers = self._auth_headers() or {"X-Registry-Auth": auth_header("", "", self.registry)}
            path = "/images/%s/push?%s" % (quote(self.repository, safe=""), urlencode({"tag": self.tag}))
            self._run_stream("POST", path, "pushing %s" % self.ref, headers=headers)
            self.pushed = True
        return self

    def result(self):
        return dict(name=self.ref, repository=self.repository, tag=self.tag, existed=self.existed,
                    built=self.built, pushed=self.pushed, files=len(self.files), dockerfile=self.dockerfile)


__all__ = ["CONTENT_LABEL", "GENERATED_DOCKERFILE", "ImageBuildError", "ImageBuilder", "auth_header",
           "content_tag", "context_archive", "generated_dockerfile", "registry_of",
           "split_image"]
