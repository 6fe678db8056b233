#!/bin/sh
# Entrypoint of the lab registry image, same rules as the official registry:2 one:
#   a config file as first argument   -> registry serve FILE
#   serve | garbage-collect | help | -* -> registry ARGS
#   anything else                     -> run it as is
set -e

case "${1:-}" in
  *.yaml|*.yml) set -- registry serve "$@" ;;
  serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac

exec "$@"
