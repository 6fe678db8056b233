#!/bin/sh
# Entrypoint of the lab redis image, same rules as the official docker-entrypoint.sh:
#   first argument an option (-*) or a file *.conf -> redis-server ARGS
#   redis-server ... started as root                -> chown what in the working dir
#                                                      (/data) is not redis's, then run
#                                                      it as redis (setpriv, not gosu)
#   anything else                                   -> run it as is
# with umask 0077 unless another one was set.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

um=$(umask)
if [ "$um" = 0022 ]; then
  umask 0077
fi

exec "$@"
