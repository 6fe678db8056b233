#!/bin/sh
# Client-side entrypoint (as in the official docker:cli image): run docker
# commands against the engine of a docker:dind container, using the TLS client
# certificates from $DOCKER_TLS_CERTDIR/client when they are there.
set -eu

# `docker run docker:dind -H ... version` / `... info`: a docker CLI call
if [ "${1#-}" != "$1" ]; then
  set -- docker "$@"
fi
if [ $# -gt 0 ] && [ "$1" != docker ] && ! command -v "$1" >/dev/null 2>&1 \
    && docker help "$1" >/dev/null 2>&1; then
  set -- docker "$@"
fi

tls_client_ready() {
  [ -n "${DOCKER_TLS_CERTDIR:-}" ] \
    && [ -s "$DOCKER_TLS_CERTDIR/client/ca.pem" ] \
    && [ -s "$DOCKER_TLS_CERTDIR/client/cert.pem" ] \
    && [ -s "$DOCKER_TLS_CERTDIR/client/key.pem" ]
}

if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ]; then
  export DOCKER_HOST=unix:///var/run/docker.sock
fi
if [ -z "${DOCKER_HOST:-}" ]; then
  # the engine is expected under the name "docker" (network alias / link)
  if tls_client_ready; then
    export DOCKER_HOST=tcp://docker:2376
  else
    export DOCKER_HOST=tcp://docker:2375
  fi
fi
case "$DOCKER_HOST" in
  tcp:*)
    if [ -z "${DOCKER_TLS_VERIFY:-}" ] && [ -z "${DOCKER_CERT_PATH:-}" ] && tls_client_ready; then
      export DOCKER_TLS_VERIFY=1
      export DOCKER_CERT_PATH="$DOCKER_TLS_CERTDIR/client"
    fi
    ;;
esac

exec "$@"
