# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one shape of every module of the collection.

A module is its documentation, one ``XxxManager(module, client)`` class and a
``main()`` of two lines::

    class WorkPoolManager(PrefectManager):
        def present(self): ...   # ensure the object; return self.result(...)
        def absent(self): ...    # remove it; return self.result(...)

    def main():
        module = AnsibleModule(argument_spec=..., supports_check_mode=True)
        run_module(module, WorkPoolManager)

Read/act modules (``server_info``, ``flow_run``) define ``run()`` instead of
``present()`` / ``absent()``.

``PrefectManager``
    ``self.module``, ``self.client`` (a ``PrefectClient``, or what ``connect`` built),
    ``self.params``, ``self.check_mode``; ``fail(msg, **kw)``; ``warn(text)`` (shown
    when the module exits); ``result(changed, before, after, header, **values)`` (the
    one diff helper, ``diff.module_result``); ``exit(result)``.
``run_module(module, manager_class, connect=PrefectClient.from_module)``
    Builds the manager, then the client with ``connect(module)``, calls ``run()`` or
    ``present()`` / ``absent()`` after ``params['state']``, turns a
    ``PrefectAPIError`` into a clean failure and exits with the result.
    A manager's constructor checks the input and must not use the client (it is
    ``None`` there): bad input is refused before the server is asked anything.
"""

from __future__ import annotations

from ansible_collections.selfhosted.prefect.plugins.module_utils.diff import module_result
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    PrefectAPIError,
    PrefectClient,
)


class PrefectManager(object):
    """Base of every module's manager: what each of them needs, nothing more."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.check_mode = module.check_mode
        self._warnings = []

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def warn(self, text):
        self._warnings.append(text)

    def result(self, changed, before=None, after=None, header=None, **values):
        return module_result(self.module, changed, before, after, header, **values)

    def exit(self, result):
        for text in self._warnings:
            self.module.warn(text)
        self.module.exit_json(**result)


def run_module(module, manager_class, connect=PrefectClient.from_module):
    """Run one module: manager (input checked), client, the action its state asks for, exit."""
    manager = manager_class(module, None)
    manager.client = connect(module)
    try:
        if hasattr(manager, "run"):
            result = manager.run()
        elif module.params.get("state") == "absent":
            result = manager.absent()
        else:
            result = manager.present()
    except PrefectAPIError as exc:
        kwargs = exc.to_fail_kwargs()
        manager.fail(kwargs.pop("msg"), **kwargs)
    manager.exit(result)
