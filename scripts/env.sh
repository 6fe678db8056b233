# shellcheck shell=bash
# Sourced by the project's scripts: the venv, and the collection made resolvable
# as `selfhosted.prefect` without installing it (a symlink outside the tree).
SHP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export SHP_ROOT
export SHP_VENV=${SHP_VENV:-$SHP_ROOT/.venv}
export SHP_CACHE=${SHP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/selfhosted-prefect}
# One collections path per checkout (keyed by its path): two clones, or a clone and a
# git worktree, used at once must not resolve `selfhosted.prefect` to each other.
_key=$(printf '%s' "$SHP_ROOT" | cksum | cut -d' ' -f1)
export SHP_COLLECTIONS=$SHP_CACHE/checkouts/$_key/collections
_coll=$SHP_COLLECTIONS/ansible_collections/selfhosted
mkdir -p "$_coll"
if [ "$(readlink "$_coll/prefect" 2>/dev/null)" != "$SHP_ROOT" ]; then
  ln -sfn "$SHP_ROOT" "$_coll/prefect"
fi
unset _coll _key
# Our collection first; community.docker/general come from the venv's `ansible` bundle.
export ANSIBLE_COLLECTIONS_PATH=$SHP_COLLECTIONS
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=true
export PATH=$SHP_VENV/bin:$PATH
export VIRTUAL_ENV=$SHP_VENV
