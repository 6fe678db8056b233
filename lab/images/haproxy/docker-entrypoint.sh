#!/bin/sh
# Entrypoint of the lab haproxy image, same rules as the official one:
#   options only (-f FILE ...) -> haproxy OPTIONS
#   haproxy ARGS               -> haproxy -W -db ARGS (master-worker, foreground)
#   anything else              -> run it as is
set -e

if [ "${1#-}" != "$1" ]; then
  set -- haproxy "$@"
fi
if [ "$1" = haproxy ]; then
  shift
  set -- haproxy -W -db "$@"
fi

exec "$@"
