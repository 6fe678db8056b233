#!/usr/bin/env bash
# Entrypoint of the lab postgres image. Follows the official postgres image's
# contract (documented on its Docker Hub page), written for Debian's packages:
#
#   POSTGRES_PASSWORD        superuser password; required on first start unless
#                            POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER            superuser name (default: postgres)
#   POSTGRES_DB              database created on first start (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS     extra initdb arguments
#   POSTGRES_INITDB_WALDIR   separate WAL directory
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for network connections
#                            (default: password_encryption, i.e. scram-sha-256)
#   <VAR>_FILE               read any of the above from a file (Docker secrets)
#   /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz, *.sql.xz, *.sql.zst
#                            run once, in name order, on a fresh data directory
#
# Started as root, it fixes ownership of the data directory and re-executes
# itself as the postgres user; postgres then runs as PID 1 (clean shutdown on
# SIGINT, the image's stop signal, and on SIGTERM).
set -Eeo pipefail

PG_BIN=/usr/lib/postgresql/${PG_MAJOR:-15}/bin
export PATH="$PG_BIN:$PATH"

log() { printf '%s\n' "$*"; }
die() { printf >&2 '%s\n' "$@"; exit 1; }

# file_env VAR [DEFAULT]: VAR or the content of the file named by VAR_FILE.
file_env() {
  local var=$1 file_var="${1}_FILE" def=${2:-} val
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    die "error: both $var and $file_var are set (but are exclusive)"
  fi
  val=$def
  if [ -n "${!var:-}" ]; then
    val=${!var}
  elif [ -n "${!file_var:-}" ]; then
    val=$(<"${!file_var}")
  fi
  export "$var=$val"
  unset "$file_var"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  DATABASE_ALREADY_EXISTS=
  if [ -s "$PGDATA/PG_VERSION" ]; then
    DATABASE_ALREADY_EXISTS=true
  fi
}

create_db_directories() {
  local user
  user=$(id -u)
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    [ "$user" != 0 ] || find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  if [ "$user" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  fi
}

verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    die "Error: Database is uninitialized and superuser password is not specified." \
        "       You must specify POSTGRES_PASSWORD to a non-empty value for the" \
        "       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\"." \
        "" \
        "       You may also use \"POSTGRES_HOST_AUTH_METHOD=trust\" to allow all" \
        "       connections without a password. This is *not* recommended." \
        "" \
        "       See PostgreSQL documentation about \"trust\":" \
        "       https://www.postgresql.org/docs/current/auth-trust.html"
  fi
  if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    printf >&2 '%s\n' \
      "WARNING: POSTGRES_HOST_AUTH_METHOD has been set to \"trust\". This will allow" \
      "         anyone with access to the Postgres port to access your database without" \
      "         a password, even if POSTGRES_PASSWORD is set."
  fi
}

nss_wrapper_lib() {
  local f
  for f in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
    if [ -e "$f" ]; then printf '%s' "$f"; return 0; fi
  done
  return 1
}

init_database_dir() {
  local pwfile lib wrapped=
  # `docker run --user 1234:1234`: initdb needs a passwd entry for its uid
  if ! getent passwd "$(id -u)" >/dev/null && lib=$(nss_wrapper_lib); then
    wrapped=1
    export LD_PRELOAD=$lib NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
    NSS_WRAPPER_PASSWD=$(mktemp)
    NSS_WRAPPER_GROUP=$(mktemp)
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" >"$NSS_WRAPPER_PASSWD"
    printf 'postgres:x:%s:\n' "$(id -g)" >"$NSS_WRAPPER_GROUP"
  fi
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # word splitting of POSTGRES_INITDB_ARGS is intended, as in the official image
  # shellcheck disable=SC2086
  if ! initdb --username="$POSTGRES_USER" --pwfile="$pwfile" $POSTGRES_INITDB_ARGS "$@"; then
    rm -f "$pwfile"
    die "error: initdb failed"
  fi
  rm -f "$pwfile"
  if [ -n "$wrapped" ]; then
    rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
    unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
  fi
}

setup_hba_conf() {
  local method=$POSTGRES_HOST_AUTH_METHOD
  if [ "${1:-}" = postgres ]; then shift; fi
  if [ -z "$method" ]; then
    method=$(postgres -C password_encryption "$@")
  fi
  POSTGRES_HOST_AUTH_METHOD=$method
  {
    printf '\n'
    if [ "$method" = trust ]; then
      printf '# warning trust is enabled for all connections\n'
    fi
    printf 'host all all all %s\n' "$method"
  } >>"$PGDATA/pg_hba.conf"
}

process_sql() {
  local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ -n "$POSTGRES_DB" ]; then
    query_runner+=(--dbname "$POSTGRES_DB")
  fi
  PGHOST='' PGHOSTADDR='' "${query_runner[@]}" "$@"
}

setup_db() {
  local exists db=$POSTGRES_DB
  exists=$(POSTGRES_DB=postgres process_sql --set db="$db" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
  )
  if [ -z "$exists" ]; then
    POSTGRES_DB=postgres process_sql --set db="$db" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
    log "CREATE DATABASE $db"
  fi
}

temp_server_start() {
  # The server's own options (`postgres -c ...`) apply, but only the Unix socket
  # listens while the entrypoint initialises: nobody else may connect before
  # the init scripts have run.
  if [ "${1:-}" = postgres ]; then shift; fi
  set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
  NOTIFY_SOCKET='' PGUSER="${PGUSER:-$POSTGRES_USER}" \
    pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

process_init_files() {
  local f
  printf '\n'
  for f in "$@"; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then
          log "$0: running $f"
          "$f"
        else
          log "$0: sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql)     log "$0: running $f"; process_sql -f "$f"; printf '\n' ;;
      *.sql.gz)  log "$0: running $f"; gunzip -c "$f" | process_sql; printf '\n' ;;
      *.sql.xz)  log "$0: running $f"; xzcat "$f" | process_sql; printf '\n' ;;
      *.sql.zst) log "$0: running $f"; zstd -dc "$f" | process_sql; printf '\n' ;;
      *)         log "$0: ignoring $f" ;;
    esac
    printf '\n'
  done
}

want_help() {
  local arg
  for arg; do
    case "$arg" in
      -'?'|--help|--describe-config|-V|--version) return 0 ;;
    esac
  done
  return 1
}

main() {
  # `docker run postgres:15 -c max_connections=200` means postgres with options
  if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
  fi

  if [ "$1" = postgres ] && ! want_help "$@"; then
    setup_env
    create_db_directories
    if [ "$(id -u)" = 0 ]; then
      # drop root: same effect as the official image's gosu, without a fork
      exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      verify_minimum_env
      ls /docker-entrypoint-initdb.d/ >/dev/null
      init_database_dir
      setup_hba_conf "$@"
      # Let init scripts connect over the socket without a password.
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      temp_server_start "$@"
      setup_db
      shopt -s nullglob
      process_init_files /docker-entrypoint-initdb.d/*
      shopt -u nullglob
      temp_server_stop
      unset PGPASSWORD
      printf '\n%s\n\n' 'PostgreSQL init process complete; ready for start up.'
    else
      printf '\n%s\n\n' 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    fi
  fi

  exec "$@"
}

main "$@"
