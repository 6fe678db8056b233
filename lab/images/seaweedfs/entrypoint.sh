#!/bin/sh
# Entrypoint of the lab SeaweedFS image, with the defaults of the official
# image's /entrypoint.sh: data under /data, volume size limits that suit small
# disks, optional S3 TLS/domain from S3_* variables. Any other first argument
# is a weed subcommand (or a plain command) run as given.

# arg_given NAME ARGS...: is -NAME or -NAME=... among ARGS?
arg_given() {
  name=$1; shift
  for a in "$@"; do
    case "$a" in
      "$name"|"$name"=*) return 0 ;;
    esac
  done
  return 1
}

weed=/usr/bin/weed
cmd=${1:-}
[ $# -eq 0 ] || shift

case "$cmd" in
  master)
    exec "$weed" -logtostderr=true master -mdir=/data -volumePreallocate -volumeSizeLimitMB=1024 "$@"
    ;;
  volume)
    if arg_given -max "$@"; then
      exec "$weed" -logtostderr=true volume -dir=/data "$@"
    fi
    exec "$weed" -logtostderr=true volume -dir=/data -max=0 "$@"
    ;;
  server)
    if arg_given -volume.max "$@"; then
      exec "$weed" -logtostderr=true server -dir=/data -master.volumePreallocate -master.volumeSizeLimitMB=1024 "$@"
    fi
    exec "$weed" -logtostderr=true server -dir=/data -volume.max=0 -master.volumePreallocate -master.volumeSizeLimitMB=1024 "$@"
    ;;
  filer)
    exec "$weed" -logtostderr=true filer "$@"
    ;;
  s3)
    exec "$weed" -logtostderr=true s3 -domainName="${S3_DOMAIN_NAME:-}" -key.file="${S3_KEY_FILE:-}" -cert.file="${S3_CERT_FILE:-}" "$@"
    ;;
  shell)
    echo "$*" | exec "$weed" -logtostderr=true shell -cluster="${SHELL_CLUSTER:-}" -filer="${SHELL_FILER:-}" \
      -filerGroup="${SHELL_FILER_GROUP:-}" -master="${SHELL_MASTER:-}" -options="${SHELL_OPTIONS:-}"
    ;;
  '')
    exec "$weed"
    ;;
  *)
    # like the official image: everything else is a weed subcommand
    # (docker run --entrypoint sh ... for a shell)
    exec "$weed" "$cmd" "$@"
    ;;
esac
