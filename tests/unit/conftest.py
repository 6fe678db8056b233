# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the collection importable as ``ansible_collections.selfhosted.prefect`` when the
unit tests run from a plain checkout (ansible-test does this itself)."""

from __future__ import annotations

import os
import sys
import tempfile

try:
    import ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client  # noqa: F401  pylint: disable=unused-import
except ImportError:
    _ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    _BASE = tempfile.mkdtemp(prefix="shp-unit-")
    os.makedirs(os.path.join(_BASE, "ansible_collections", "selfhosted"))
    os.symlink(_ROOT, os.path.join(_BASE, "ansible_collections", "selfhosted", "prefect"))
    sys.path.insert(0, _BASE)
