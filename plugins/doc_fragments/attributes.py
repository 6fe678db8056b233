# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):
    """Descriptions of the attributes the modules declare; each module states its support."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Can run in check mode and return a prediction of whether it would change
        anything, without changing the server.
  diff_mode:
    description:
      - Returns before and after states of what changed (or would change in check mode),
        when in diff mode. Secret values are masked.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second
        run reports no change.
      - This assumes that nobody changed the server in a relevant way between the runs.
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""
