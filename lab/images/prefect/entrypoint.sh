#!/usr/bin/env bash
# Entrypoint of the lab prefect image; behaves like the official
# /opt/prefect/entrypoint.sh: optional extra packages, then the command.
set -e

if [ -f ~/.bashrc ]; then
  # shellcheck disable=SC1090
  . ~/.bashrc
fi

if [ -n "${EXTRA_PIP_PACKAGES:-}" ]; then
  echo "+pip install $EXTRA_PIP_PACKAGES"
  # word splitting is intended: a space-separated list of requirement specifiers
  # shellcheck disable=SC2086
  pip install $EXTRA_PIP_PACKAGES
fi

if [ $# -eq 0 ]; then
  exec bash --login
fi
exec "$@"
