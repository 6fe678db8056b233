#!/bin/sh
# Entrypoint of the lab docker:dind image; same contract as the official one:
#   no arguments, or options only   -> dockerd with the default listeners + options
#   DOCKER_TLS_CERTDIR=/certs (default) -> certificates under
#       /certs/ca/{cert,key}.pem            CA (kept; create it once)
#       /certs/server/{ca,cert,key}.pem     server certificate, re-issued at every
#                                           start for the current names/addresses
#       /certs/client/{ca,cert,key}.pem     client certificate (share this directory)
#     and dockerd listens on unix:///var/run/docker.sock and tcp://0.0.0.0:2376
#     with --tlsverify; DOCKER_TLS_SAN adds subjectAltName entries
#     ("DNS:name,IP:1.2.3.4").
#   DOCKER_TLS_CERTDIR=''            -> plain tcp://0.0.0.0:2375 (no TLS)
#   dockerd ...                      -> dockerd exactly as given
#   anything else                    -> through docker-entrypoint.sh (docker CLI)
set -eu

days=825  # the longest validity that common TLS clients accept

ensure_key() {
  [ -s "$1" ] || openssl genrsa -out "$1" 4096 2>/dev/null
}

# every name and address under which clients may reach this engine
server_san() {
  {
    ip -oneline address 2>/dev/null | awk '{ sub(/\/.*$/, "", $4); print "IP:" $4 }'
    {
      cat /etc/hostname
      echo docker
      echo localhost
      hostname -f 2>/dev/null || :
      hostname -s 2>/dev/null || :
    } | sed '/^$/d; s/^/DNS:/'
    if [ -n "${DOCKER_TLS_SAN:-}" ]; then
      printf '%s\n' "$DOCKER_TLS_SAN" | tr ' ,' '\n' | sed '/^$/d'
    fi
  } | sort -u | paste -sd, -
}

cert_valid() {  # cert_valid CERT CA: signed by CA and valid for one more day
  [ -s "$1" ] && [ -s "$2" ] \
    && openssl verify -CAfile "$2" "$1" >/dev/null 2>&1 \
    && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1
}

issue() {  # issue DIR SUBJECT EXTENSIONS: DIR/cert.pem signed by the CA
  ext=$(mktemp)
  printf '[ x509_exts ]\n%s\n' "$3" >"$ext"
  openssl req -new -key "$1/key.pem" -out "$1/csr.pem" -subj "$2"
  openssl x509 -req -in "$1/csr.pem" -CA "$certs/ca/cert.pem" -CAkey "$certs/ca/key.pem" \
    -CAcreateserial -out "$1/cert.pem" -days "$days" -extfile "$ext" -extensions x509_exts 2>/dev/null
  rm -f "$ext" "$1/csr.pem"
  cp "$certs/ca/cert.pem" "$1/ca.pem"
  openssl verify -CAfile "$1/ca.pem" "$1/cert.pem" >/dev/null
}

generate_certs() {
  certs=$1
  mkdir -p "$certs/ca"
  if [ ! -s "$certs/ca/cert.pem" ] || ! openssl x509 -in "$certs/ca/cert.pem" -noout -checkend 86400 >/dev/null 2>&1; then
    if [ ! -s "$certs/ca/key.pem" ] && [ -s "$certs/ca/cert.pem" ]; then
      echo >&2 "error: $certs/ca/cert.pem expires and its key is not in $certs/ca; cannot renew"
      exit 1
    fi
    ensure_key "$certs/ca/key.pem"
    openssl req -new -x509 -key "$certs/ca/key.pem" -out "$certs/ca/cert.pem" \
      -subj '/CN=docker:dind CA' -days "$days"
  fi
  if [ ! -s "$certs/ca/key.pem" ]; then
    # a CA without its key (provided by the user): use the certificates as given
    return 0
  fi

  mkdir -p "$certs/server"
  ensure_key "$certs/server/key.pem"
  issue "$certs/server" '/CN=docker:dind server' "subjectAltName = $(server_san)"

  mkdir -p "$certs/client"
  ensure_key "$certs/client/key.pem"
  # shared with arbitrary client containers
  chmod 0644 "$certs/client/key.pem"
  if ! cert_valid "$certs/client/cert.pem" "$certs/ca/cert.pem"; then
    issue "$certs/client" '/CN=docker:dind client' 'extendedKeyUsage = clientAuth'
  fi
  cp "$certs/ca/cert.pem" "$certs/client/ca.pem"
}

legacy_rules_exist() {
  for f in /proc/net/ip_tables_names /proc/net/ip6_tables_names /proc/net/arp_tables_names; do
    if [ -n "$(cat "$f" 2>/dev/null)" ]; then
      return 0
    fi
  done
  return 1
}

choose_iptables() {
  # Debian's default iptables speaks nf_tables. Use the legacy (xtables) tools
  # when asked to (DOCKER_IPTABLES_LEGACY=1), when legacy rules already exist in
  # this network namespace, or when nf_tables does not work here.
  legacy=/usr/local/sbin/.iptables-legacy
  if [ -n "${DOCKER_IPTABLES_LEGACY+x}" ]; then
    :
  elif legacy_rules_exist; then
    DOCKER_IPTABLES_LEGACY=1
  elif ! iptables -nL >/dev/null 2>&1; then
    modprobe nf_tables 2>/dev/null || :
    if ! iptables -nL >/dev/null 2>&1; then
      modprobe ip_tables 2>/dev/null || :
      if "$legacy/iptables" -nL >/dev/null 2>&1; then
        DOCKER_IPTABLES_LEGACY=1
      fi
    fi
  fi
  if [ -n "${DOCKER_IPTABLES_LEGACY:-}" ]; then
    export DOCKER_IPTABLES_LEGACY
    export PATH="$legacy:$PATH"
  fi
}

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  socket=unix:///var/run/docker.sock
  case "${DOCKER_HOST:-}" in
    unix://*) socket=$DOCKER_HOST ;;
  esac
  if [ -n "${DOCKER_TLS_CERTDIR:-}" ]; then
    generate_certs "$DOCKER_TLS_CERTDIR"
    for f in ca.pem cert.pem key.pem; do
      [ -s "$DOCKER_TLS_CERTDIR/server/$f" ] || { echo >&2 "error: missing $DOCKER_TLS_CERTDIR/server/$f"; exit 1; }
    done
    set -- dockerd \
      --host="$socket" \
      --host=tcp://0.0.0.0:2376 \
      --tlsverify \
      --tlscacert "$DOCKER_TLS_CERTDIR/server/ca.pem" \
      --tlscert "$DOCKER_TLS_CERTDIR/server/cert.pem" \
      --tlskey "$DOCKER_TLS_CERTDIR/server/key.pem" \
      "$@"
  else
    set -- dockerd \
      --host="$socket" \
      --host=tcp://0.0.0.0:2375 \
      "$@"
  fi
fi

if [ "$1" = dockerd ]; then
  if [ "$(id -u)" != 0 ]; then
    echo >&2 "error: this image runs dockerd as root only (no rootless variant)"
    exit 1
  fi
  # a PID file left by an unclean stop would keep dockerd from starting
  find /run /var/run -iname 'docker*.pid' -delete 2>/dev/null || :
  choose_iptables
  # docker-init (tini) as PID 1 reaps the zombie shims of Docker 20.10
  set -- docker-init -- "$@"
  set -- /usr/local/bin/dind "$@"
else
  set -- docker-entrypoint.sh "$@"
fi

exec "$@"
